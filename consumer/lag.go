// Lag probes: how far each held shard's consumption trails the shard's newest data, in receive-time seconds.
package consumer

import (
	"encoding/base64"
	"strconv"
)

// probeLag measures every held shard that is not known to be caught up:
// lag = receive time of the newest group − receive time of the first group
// not yet consumed (both server clocks, so host clock skew does not matter).
func (t *target) probeLag() {
	type probe struct {
		id   int
		next string
	}
	var probes []probe
	t.mu.Lock()
	for id, h := range t.held {
		if h.nextCursor != "" && h.currentCursor != h.nextCursor {
			probes = append(probes, probe{id, h.nextCursor})
		}
	}
	t.mu.Unlock()

	for _, p := range probes {
		lag, err := t.shardLag(p.id, p.next)
		if err != nil {
			t.logger.Debug("Lag probe failed", "shard", p.id, "err", err)
			continue
		}
		t.mu.Lock()
		// Keep the result only if the shard has not moved on meanwhile.
		if h, ok := t.held[p.id]; ok && h.nextCursor == p.next {
			h.lagSeconds = lag
		}
		t.mu.Unlock()
	}
}

func (t *target) shardLag(shard int, next string) (float64, error) {
	p, l := t.cfg.Project, t.cfg.Logstore
	end, err := t.client.GetCursor(p, l, shard, "end")
	if err != nil {
		t.metrics.CountError(t.labels, "GetCursor", errorCode(err))
		return 0, err
	}
	if end == next {
		return 0, nil
	}
	newestCursor, ok := previousCursor(end)
	if !ok {
		return 0, nil
	}
	newest, err := t.client.GetCursorTime(p, l, shard, newestCursor)
	if err != nil {
		t.metrics.CountError(t.labels, "GetCursorTime", errorCode(err))
		return 0, err
	}
	oldestUnread, err := t.client.GetCursorTime(p, l, shard, next)
	if err != nil {
		t.metrics.CountError(t.labels, "GetCursorTime", errorCode(err))
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
