// Lag probes: how far each held shard's consumption trails the shard's newest data, in receive-time seconds.
package consumer

import (
	"encoding/base64"
	"strconv"
	"time"
)

// maybeProbeLag measures, every lag_interval and off the work loop, the
// shards whose last pull returned data: lag = receive time of the newest
// group − receive time of the first group not yet consumed (both server
// clocks, so host clock skew does not matter). Caught-up shards have lag 0
// without a call.
func (m *member) maybeProbeLag(now time.Time) {
	type probe struct {
		sh   *shardState
		next string
	}
	m.mu.Lock()
	if m.probing || now.Sub(m.lastLagProbe) < m.settings.LagInterval {
		m.mu.Unlock()
		return
	}
	m.lastLagProbe = now
	var probes []probe
	for _, sh := range m.shards {
		if sh.status == shardActive && !sh.caughtUp && sh.cursor != "" {
			probes = append(probes, probe{sh, sh.cursor})
		}
	}
	if len(probes) == 0 {
		m.mu.Unlock()
		return
	}
	m.probing = true
	m.mu.Unlock()

	m.background.Go(func() {
		defer func() {
			m.mu.Lock()
			m.probing = false
			m.mu.Unlock()
		}()
		for _, p := range probes {
			m.mu.Lock()
			stopping := m.stopping
			m.mu.Unlock()
			if stopping || m.ctx.Err() != nil {
				return // each further call would delay the stop or fail
			}
			lag, err := m.shardLag(p.sh.id, p.next)
			if err != nil {
				m.logger.Debug("Lag probe failed", "shard", p.sh.id, "err", err)
				continue
			}
			m.mu.Lock()
			// Keep the result only if the shard has not moved on meanwhile.
			if p.sh.cursor == p.next && !p.sh.caughtUp {
				p.sh.lagSeconds = lag
			}
			m.mu.Unlock()
		}
	})
}

func (m *member) shardLag(shard int, next string) (float64, error) {
	p, l := m.cfg.Project, m.cfg.Logstore
	end, err := m.client.GetCursor(p, l, shard, "end")
	if err != nil {
		m.countError("GetCursor", err)
		return 0, err
	}
	if end == next {
		return 0, nil
	}
	newestCursor, ok := previousCursor(end)
	if !ok {
		return 0, nil
	}
	newest, err := m.client.GetCursorTime(p, l, shard, newestCursor)
	if err != nil {
		m.countError("GetCursorTime", err)
		return 0, err
	}
	oldestUnread, err := m.client.GetCursorTime(p, l, shard, next)
	if err != nil {
		m.countError("GetCursorTime", err)
		return 0, err
	}
	return max(0, newest.Sub(oldestUnread).Seconds()), nil
}

// previousCursor is the cursor of the group before c: SLS cursors are
// base64 of an integer that grows by one per log group.
func previousCursor(c string) (string, bool) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil {
		return "", false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return "", false
	}
	return base64.StdEncoding.EncodeToString(strconv.AppendInt(nil, v-1, 10)), true
}
