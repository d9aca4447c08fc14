// Shard split and merge: readwrite shards turn readonly and new readwrite shards take over their hash-key ranges.
package slsemu

import (
	"fmt"
	"math/big"
	"strconv"
	"strings"
	"time"
)

// MaxSplitShardCount bounds SplitShard's shardCount (the SDK's SplitNumShard).
// SLS documents no limit; 64 keeps a mistaken call from creating thousands.
const MaxSplitShardCount = 64

// parseHashKey reads a 32-hex-digit MD5 hash key.
func parseHashKey(key string) (*big.Int, bool) {
	if len(key) != 32 || !isHex(key) {
		return nil, false
	}
	v, ok := new(big.Int).SetString(key, 16)
	return v, ok
}

func formatHashKey(v *big.Int) string { return fmt.Sprintf("%032x", v) }

// splitBounds returns the boundaries of the children of a shard covering
// [begin, end): begin, key, end when key is given, else count+1 evenly spaced
// keys (count 0 means 2, which is what an empty key asks SLS for).
func splitBounds(begin, end, key string, count int) ([]string, *APIError) {
	if key != "" {
		key = strings.ToLower(key)
		if _, ok := parseHashKey(key); !ok {
			return nil, errParameterInvalid("invalid mid hash: %q is not 32 hex digits", key)
		}
		if count != 0 && count != 2 {
			return nil, errParameterInvalid("a split key makes 2 shards, but shardCount is %d", count)
		}
		// Keys of equal length compare as strings the way their values do.
		if key <= begin || key >= end {
			return nil, errParameterInvalid("invalid mid hash: %s is not strictly inside the shard's range [%s, %s)", key, begin, end)
		}
		return []string{begin, key, end}, nil
	}
	if count == 0 {
		count = 2
	}
	if count < 2 || count > MaxSplitShardCount {
		return nil, errParameterInvalid("shardCount must be in [2, %d], got %d", MaxSplitShardCount, count)
	}
	b, _ := parseHashKey(begin)
	e, _ := parseHashKey(end)
	width := new(big.Int).Sub(e, b)
	if width.Cmp(big.NewInt(int64(count))) < 0 {
		return nil, errParameterInvalid("the shard's range [%s, %s) is too narrow to split into %d", begin, end, count)
	}
	bounds := []string{begin}
	for i := 1; i < count; i++ {
		k := new(big.Int).Mul(width, big.NewInt(int64(i)))
		k.Div(k, big.NewInt(int64(count)))
		bounds = append(bounds, formatHashKey(k.Add(k, b)))
	}
	return append(bounds, end), nil
}

// splitShard seals readwrite shard id and creates readwrite children over its
// range with the next free IDs. It answers as SLS does: the parent, now
// readonly, then the children.
func (l *logstore) splitShard(id int, key string, count int, now time.Time) ([]shardInfo, *APIError) {
	l.shardsMu.Lock()
	defer l.shardsMu.Unlock()
	parent, apiErr := l.readWriteShardLocked(id)
	if apiErr != nil {
		return nil, apiErr
	}
	bounds, apiErr := splitBounds(parent.beginKey, parent.endKey, key, count)
	if apiErr != nil {
		return nil, apiErr
	}
	children := make([]*shard, 0, len(bounds)-1)
	for i := 0; i+1 < len(bounds); i++ {
		children = append(children, newShard(len(l.shards)+i, bounds[i], bounds[i+1], now))
	}
	l.reshardLocked([]*shard{parent}, children)
	out := []shardInfo{parent.infoLocked()}
	for _, c := range children {
		out = append(out, c.infoLocked())
	}
	return out, nil
}

// mergeShards seals readwrite shard id and its right neighbour, the readwrite
// shard whose range begins where id's ends, and creates one readwrite shard
// over both ranges. It answers as SLS does: the merged shard, then the two
// sealed ones.
func (l *logstore) mergeShards(id int, now time.Time) ([]shardInfo, *APIError) {
	l.shardsMu.Lock()
	defer l.shardsMu.Unlock()
	left, apiErr := l.readWriteShardLocked(id)
	if apiErr != nil {
		return nil, apiErr
	}
	var right *shard
	for _, sh := range l.shards {
		if sh.status == shardReadWrite && sh.beginKey == left.endKey {
			right = sh
			break
		}
	}
	if right == nil {
		return nil, errParameterInvalid("can not merge the last shard: no readwrite shard begins at %s", left.endKey)
	}
	merged := newShard(len(l.shards), left.beginKey, right.endKey, now)
	l.reshardLocked([]*shard{left, right}, []*shard{merged})
	return []shardInfo{merged.infoLocked(), left.infoLocked(), right.infoLocked()}, nil
}

// readWriteShardLocked returns shard id if it exists and is readwrite. SLS
// documents "400 ParameterInvalid: invalid shard id" for both failures.
func (l *logstore) readWriteShardLocked(id int) (*shard, *APIError) {
	sh := l.shardByIDLocked(id)
	if sh == nil {
		return nil, errParameterInvalid("invalid shard id: shard %d does not exist", id)
	}
	if sh.status != shardReadWrite {
		return nil, errParameterInvalid("invalid shard id: shard %d is readonly", id)
	}
	return sh, nil
}

// reshardLocked turns sealed readonly, adds the new shards and tells every
// consumer group. The caller holds shardsMu for writing, so no write is in
// flight to a sealed shard and its end cursor is final.
func (l *logstore) reshardLocked(sealed, added []*shard) {
	ends := make(map[int]int64, len(sealed))
	for _, sh := range sealed {
		sh.status = shardReadOnly
		ends[sh.id] = sh.endCursorValue()
	}
	ids := make([]int, len(added))
	for i, sh := range added {
		l.shards = append(l.shards, sh)
		ids[i] = sh.id
	}
	l.groups.reshard(ends, ids)
}

// serveSplitShard answers POST /logstores/{ls}/shards/{id}?action=split&key=K
// (SDK SplitShard) or &shardCount=N (SDK SplitNumShard).
func (s *Server) serveSplitShard(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	id, err := strconv.Atoi(c.shard)
	if err != nil {
		return c.fail(errParameterInvalid("invalid shard id: %q", c.shard))
	}
	q := c.r.URL.Query()
	count := 0
	if v := q.Get("shardCount"); v != "" {
		if count, err = strconv.Atoi(v); err != nil {
			return c.fail(errParameterInvalid("shardCount %q is not a number", v))
		}
	}
	shards, apiErr := l.splitShard(id, q.Get("key"), count, c.now)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(shards)
}

// serveMergeShards answers POST /logstores/{ls}/shards/{id}?action=merge.
func (s *Server) serveMergeShards(c *call) int {
	l, apiErr := c.lookupLogstore()
	if apiErr != nil {
		return c.fail(apiErr)
	}
	id, err := strconv.Atoi(c.shard)
	if err != nil {
		return c.fail(errParameterInvalid("invalid shard id: %q", c.shard))
	}
	shards, apiErr := l.mergeShards(id, c.now)
	if apiErr != nil {
		return c.fail(apiErr)
	}
	return c.ok(shards)
}

// SplitShard splits a readwrite shard as the SplitShard API does: at key (32
// hex digits strictly inside the shard's range) or, when key is "", in the
// middle. The shard turns readonly; two readwrite shards with the next free
// IDs take over [begin, key) and [key, end).
func (s *Server) SplitShard(projectName, logstoreName string, shard int, key string) error {
	_, l, apiErr := s.lookupLogstore(projectName, logstoreName)
	if apiErr != nil {
		return apiErr
	}
	if _, apiErr := l.splitShard(shard, key, 0, time.Now()); apiErr != nil {
		return apiErr
	}
	return nil
}

// MergeShards merges a readwrite shard with its right neighbour as the
// MergeShards API does: both turn readonly and one readwrite shard with the
// next free ID takes over their joint range.
func (s *Server) MergeShards(projectName, logstoreName string, shard int) error {
	_, l, apiErr := s.lookupLogstore(projectName, logstoreName)
	if apiErr != nil {
		return apiErr
	}
	if _, apiErr := l.mergeShards(shard, time.Now()); apiErr != nil {
		return apiErr
	}
	return nil
}
