// Consumer groups: membership, server-side shard assignment with handover, checkpoints.
package slsemu

import (
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MaxConsumerGroupsPerLogstore is SLS's documented quota.
const MaxConsumerGroupsPerLogstore = 30

// groupSet holds the consumer groups of one logstore.
type groupSet struct {
	mu     sync.Mutex
	groups map[string]*consumerGroup
	shards []int // shard IDs of the logstore; split and merge add to it
	// sealedEnd maps each readonly shard to its end cursor's integer, which
	// never moves again: a group whose checkpoint reaches it is done with the shard.
	sealedEnd map[int]int64
	// violations counts moments when a shard was held by two consumers.
	violations []string
}

type consumerGroup struct {
	name      string
	timeout   time.Duration
	inOrder   bool
	consumers map[string]*groupConsumer
	shards    map[int]*shardAssignment
}

type groupConsumer struct {
	name     string
	lastSeen time.Time
	reported []int // shards in its last heartbeat body
	acked    []int // shards in the last reply it was sent
}

type shardAssignment struct {
	owner      string // "" when unowned
	transferTo string // set while the owner is asked to release the shard
	checkpoint string
	updateTime time.Time
	cpConsumer string
	// over: the shard is readonly and the checkpoint is its end cursor. An
	// over shard is nobody's and is given to no one (SLS's "over" state).
	over bool
}

func newGroupSet(shardIDs []int) *groupSet {
	return &groupSet{groups: map[string]*consumerGroup{}, shards: shardIDs, sealedEnd: map[int]int64{}}
}

// GroupInfo is a consumer group as listed.
type GroupInfo struct {
	Name    string `json:"name"`
	Timeout int    `json:"timeout"`
	InOrder bool   `json:"order"`
}

func (gs *groupSet) list() []GroupInfo {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	out := make([]GroupInfo, 0, len(gs.groups))
	for _, g := range gs.groups {
		out = append(out, GroupInfo{Name: g.name, Timeout: int(g.timeout / time.Second), InOrder: g.inOrder})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (gs *groupSet) create(name string, timeoutSec int, inOrder bool) *APIError {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if _, ok := gs.groups[name]; ok {
		return newAPIError(http.StatusBadRequest, "ConsumerGroupAlreadyExist", "consumer group %s already exists", name)
	}
	if len(gs.groups) >= MaxConsumerGroupsPerLogstore {
		return newAPIError(http.StatusBadRequest, "ConsumerGroupQuotaExceed", "a logstore may have at most %d consumer groups", MaxConsumerGroupsPerLogstore)
	}
	g := &consumerGroup{
		name:      name,
		timeout:   time.Duration(timeoutSec) * time.Second,
		inOrder:   inOrder,
		consumers: map[string]*groupConsumer{},
		shards:    map[int]*shardAssignment{},
	}
	for _, id := range gs.shards {
		g.shards[id] = &shardAssignment{}
	}
	gs.groups[name] = g
	return nil
}

// reshard records a split or merge: the sealed shards turned readonly with
// the given end cursors, and every group learns the added shards, unowned and
// without a checkpoint, to be assigned like any other.
func (gs *groupSet) reshard(sealed map[int]int64, added []int) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	gs.shards = append(gs.shards, added...)
	for id, end := range sealed {
		gs.sealedEnd[id] = end
	}
	for _, g := range gs.groups {
		for _, id := range added {
			g.shards[id] = &shardAssignment{}
		}
		for id := range sealed {
			gs.refreshOver(id, g.shards[id])
		}
	}
}

// refreshOver recomputes whether a shard is over after its checkpoint or
// status changed. Reaching the end releases the shard from its owner; a
// checkpoint moved back off the end (a reset) makes it assignable again.
func (gs *groupSet) refreshOver(id int, a *shardAssignment) {
	end, sealed := gs.sealedEnd[id]
	cp, ok := decodeCursor(a.checkpoint)
	a.over = sealed && ok && cp == end
	if a.over {
		a.owner, a.transferTo = "", ""
	}
}

func (gs *groupSet) update(name string, timeoutSec *int, inOrder *bool) *APIError {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.groups[name]
	if !ok {
		return errConsumerGroupNotExist(name)
	}
	if timeoutSec != nil {
		g.timeout = time.Duration(*timeoutSec) * time.Second
	}
	if inOrder != nil {
		g.inOrder = *inOrder
	}
	return nil
}

func (gs *groupSet) delete(name string) *APIError {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	if _, ok := gs.groups[name]; !ok {
		return errConsumerGroupNotExist(name)
	}
	delete(gs.groups, name)
	return nil
}

// heartbeat records that consumer holds reported and returns the shards it
// may consume, after expiring silent consumers and rebalancing.
func (gs *groupSet) heartbeat(groupName, consumer string, reported []int, now time.Time) ([]int, *APIError) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.groups[groupName]
	if !ok {
		return nil, errConsumerGroupNotExist(groupName)
	}
	g.expire(now)
	c, known := g.consumers[consumer]
	if !known {
		if len(reported) > 0 {
			return nil, newAPIError(http.StatusBadRequest, "NotExistConsumerWithBody", "non-exist consumer %s with non-empty body of heartbeat message", consumer)
		}
		c = &groupConsumer{name: consumer}
		g.consumers[consumer] = c
	}
	c.lastSeen = now
	c.reported = slices.Clone(reported)

	// A shard being handed over moves once its old holder stops reporting it.
	for id, a := range g.shards {
		if a.owner == consumer && a.transferTo != "" && !slices.Contains(reported, id) {
			a.owner, a.transferTo = a.transferTo, ""
		}
	}
	g.assignUnowned()
	g.rebalance()

	ack := []int{}
	for id, a := range g.shards {
		if a.owner == consumer && a.transferTo == "" {
			ack = append(ack, id)
		}
	}
	sort.Ints(ack)
	c.acked = ack
	gs.checkExclusive(g, now)
	return ack, nil
}

// expire drops consumers silent for longer than the group timeout: transfers
// away from them complete, transfers to them are cancelled.
func (g *consumerGroup) expire(now time.Time) {
	for name, c := range g.consumers {
		if now.Sub(c.lastSeen) <= g.timeout {
			continue
		}
		delete(g.consumers, name)
		for _, a := range g.shards {
			switch {
			case a.owner == name:
				a.owner, a.transferTo = a.transferTo, ""
			case a.transferTo == name:
				a.transferTo = ""
			}
		}
	}
}

// load counts the shards a consumer holds or is about to receive.
func (g *consumerGroup) load() map[string]int {
	load := make(map[string]int, len(g.consumers))
	for name := range g.consumers {
		load[name] = 0
	}
	for _, a := range g.shards {
		switch { // an over shard has neither owner nor transfer, so it weighs nothing
		case a.transferTo != "":
			load[a.transferTo]++
		case a.owner != "":
			load[a.owner]++
		}
	}
	return load
}

// leastLoaded returns the live consumer with the smallest load, ties by name.
func leastLoaded(load map[string]int) string {
	best := ""
	for name, n := range load {
		if best == "" || n < load[best] || (n == load[best] && name < best) {
			best = name
		}
	}
	return best
}

func mostLoaded(load map[string]int) string {
	best := ""
	for name, n := range load {
		if best == "" || n > load[best] || (n == load[best] && name < best) {
			best = name
		}
	}
	return best
}

func (g *consumerGroup) sortedShardIDs() []int {
	ids := make([]int, 0, len(g.shards))
	for id := range g.shards {
		ids = append(ids, id)
	}
	sort.Ints(ids)
	return ids
}

// assignUnowned gives every unowned shard that is not over to a consumer:
// one that still reports it (a shard whose checkpoint was reset off the end
// after it was over), else the least loaded, so no shard is held twice.
func (g *consumerGroup) assignUnowned() {
	if len(g.consumers) == 0 {
		return
	}
	load := g.load()
	for _, id := range g.sortedShardIDs() {
		a := g.shards[id]
		if a.owner != "" || a.over {
			continue
		}
		a.owner = g.reporterOf(id)
		if a.owner == "" {
			a.owner = leastLoaded(load)
		}
		load[a.owner]++
	}
}

// reporterOf returns the first live consumer, by name, whose last heartbeat reported shard id.
func (g *consumerGroup) reporterOf(id int) string {
	best := ""
	for name, c := range g.consumers {
		if slices.Contains(c.reported, id) && (best == "" || name < best) {
			best = name
		}
	}
	return best
}

// rebalance starts handovers until loads differ by at most one.
func (g *consumerGroup) rebalance() {
	if len(g.consumers) < 2 {
		return
	}
	load := g.load()
	for {
		from, to := mostLoaded(load), leastLoaded(load)
		if load[from]-load[to] <= 1 {
			return
		}
		moved := false
		// Prefer redirecting a pending handover over disturbing a settled shard.
		for _, id := range g.sortedShardIDs() {
			if a := g.shards[id]; a.transferTo == from {
				a.transferTo = to
				moved = true
				break
			}
		}
		if !moved {
			for _, id := range g.sortedShardIDs() {
				if a := g.shards[id]; a.owner == from && a.transferTo == "" {
					a.transferTo = to
					moved = true
					break
				}
			}
		}
		if !moved {
			return
		}
		load[from]--
		load[to]++
	}
}

// checkExclusive records any shard that two live consumers hold at once: a
// consumer holds a shard from the reply that grants it until it stops
// reporting it.
func (gs *groupSet) checkExclusive(g *consumerGroup, now time.Time) {
	holders := map[int][]string{}
	for name, c := range g.consumers {
		seen := map[int]bool{}
		for _, id := range append(slices.Clone(c.acked), c.reported...) {
			if !seen[id] {
				seen[id] = true
				holders[id] = append(holders[id], name)
			}
		}
	}
	for id, names := range holders {
		if len(names) > 1 {
			sort.Strings(names)
			gs.violations = append(gs.violations, now.Format(time.RFC3339Nano)+": group "+g.name+" shard "+strconv.Itoa(id)+" held by "+strings.Join(names, ", "))
		}
	}
}

func (gs *groupSet) updateCheckpoint(groupName, consumer string, shardID int, checkpoint string, force bool, now time.Time) *APIError {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.groups[groupName]
	if !ok {
		return errConsumerGroupNotExist(groupName)
	}
	a, ok := g.shards[shardID]
	if !ok {
		return newAPIError(http.StatusNotFound, "ShardNotExist", "shard %d does not exist", shardID)
	}
	if _, ok := decodeCursor(checkpoint); !ok {
		return newAPIError(http.StatusBadRequest, "InvalidShardCheckPoint", "shard checkpoint not encoded by base64")
	}
	if !force {
		g.expire(now)
		if _, ok := g.consumers[consumer]; !ok {
			return newAPIError(http.StatusNotFound, "ConsumerNotExist", "Consumer not exist in the consumer group")
		}
		if a.owner != consumer {
			return newAPIError(http.StatusBadRequest, "ConsumerNotMatch", "shard %d is held by another consumer", shardID)
		}
	}
	a.checkpoint, a.updateTime, a.cpConsumer = checkpoint, now, consumer
	gs.refreshOver(shardID, a)
	return nil
}

// Checkpoint is a shard's saved position in a consumer group.
type Checkpoint struct {
	Shard      int    `json:"shard"`
	Checkpoint string `json:"checkpoint"`
	UpdateTime int64  `json:"updateTime"` // microseconds
	Consumer   string `json:"consumer"`
}

// checkpoints lists every shard's checkpoint (shard < 0) or one shard's.
func (gs *groupSet) checkpoints(groupName string, shard int) ([]Checkpoint, *APIError) {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	g, ok := gs.groups[groupName]
	if !ok {
		return nil, errConsumerGroupNotExist(groupName)
	}
	out := []Checkpoint{}
	for _, id := range g.sortedShardIDs() {
		if shard >= 0 && id != shard {
			continue
		}
		a := g.shards[id]
		cp := Checkpoint{Shard: id, Checkpoint: a.checkpoint, Consumer: a.cpConsumer}
		if !a.updateTime.IsZero() {
			cp.UpdateTime = a.updateTime.UnixMicro()
		}
		out = append(out, cp)
	}
	return out, nil
}

// GroupState is a snapshot of one consumer group for tests and the admin API.
type GroupState struct {
	Name      string                   `json:"name"`
	Timeout   int                      `json:"timeout"`
	Consumers map[string]ConsumerState `json:"consumers"`
	// Owner maps shard ID to the consumer that owns it ("" when unowned).
	Owner map[int]string `json:"owner"`
	// TransferTo maps shard ID to the consumer it is being handed to.
	TransferTo map[int]string `json:"transfer_to,omitempty"`
	// Over lists the readonly shards this group has consumed to their end
	// cursor; they are given to no consumer any more.
	Over        []int        `json:"over,omitempty"`
	Checkpoints []Checkpoint `json:"checkpoints"`
}

// ConsumerState is what the server knows of one consumer.
type ConsumerState struct {
	LastSeen time.Time `json:"last_seen"`
	Reported []int     `json:"reported"`
	Acked    []int     `json:"acked"`
}

func (gs *groupSet) state(groupName string, now time.Time) (GroupState, bool) {
	gs.mu.Lock()
	g, ok := gs.groups[groupName]
	if !ok {
		gs.mu.Unlock()
		return GroupState{}, false
	}
	g.expire(now)
	st := GroupState{
		Name:       g.name,
		Timeout:    int(g.timeout / time.Second),
		Consumers:  map[string]ConsumerState{},
		Owner:      map[int]string{},
		TransferTo: map[int]string{},
	}
	for name, c := range g.consumers {
		st.Consumers[name] = ConsumerState{LastSeen: c.lastSeen, Reported: slices.Clone(c.reported), Acked: slices.Clone(c.acked)}
	}
	for _, id := range g.sortedShardIDs() {
		a := g.shards[id]
		st.Owner[id] = a.owner
		if a.transferTo != "" {
			st.TransferTo[id] = a.transferTo
		}
		if a.over {
			st.Over = append(st.Over, id)
		}
	}
	gs.mu.Unlock()
	st.Checkpoints, _ = gs.checkpoints(groupName, -1)
	return st, true
}

func (gs *groupSet) violationLog() []string {
	gs.mu.Lock()
	defer gs.mu.Unlock()
	return slices.Clone(gs.violations)
}
