// In-memory projects, logstores and shards: the log groups, cursors and retention.
package slsemu

import (
	"encoding/base64"
	"fmt"
	"math/big"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pierrec/lz4/v4"
)

// storedGroup is one log group as written: framed for a LogGroupList and
// compressed once, so a pull only splices bytes.
type storedGroup struct {
	segment
	receiveTime time.Time
	logCount    int
}

// Retention bounds what each shard keeps, so a long demo cannot exhaust memory.
type Retention struct {
	MaxBytesPerShard int64         // raw (uncompressed) bytes; 0 means unbounded
	MaxAge           time.Duration // 0 means unbounded
}

// Shard statuses as ListShards reports them.
const (
	shardReadWrite = "readwrite"
	shardReadOnly  = "readonly"
)

type shard struct {
	id        int
	status    string // shardReadWrite or shardReadOnly; guarded by logstore.shardsMu
	beginKey  string // inclusive, 32 lowercase hex digits
	endKey    string // exclusive
	createdAt time.Time

	mu         sync.RWMutex
	cursorBase int64          // cursor integer of the group with index 0
	first      int64          // index of the oldest retained group
	groups     []*storedGroup // groups[i] has index first+i
	rawBytes   int64          // raw bytes retained
}

type logstore struct {
	name          string
	ttl           int
	appendMeta    bool
	telemetryType string // as created; ListLogStores filters on it
	createdAt     time.Time
	groups        *groupSet
	retention     Retention
	nextLB        atomic.Uint64 // round-robin position for load-balanced writes

	// shardsMu guards shards (shards[i].id == i; split and merge append) and
	// every shard's status. Writes hold the read lock from choosing a shard to
	// appending to it, so a split or merge (write lock) never seals a shard
	// while a write to it is in flight, and a sealed shard's end never moves.
	shardsMu sync.RWMutex
	shards   []*shard
}

type project struct {
	name   string
	region *region

	mu        sync.RWMutex
	logstores map[string]*logstore
}

type region struct {
	name     string
	endpoint string // host name clients use, without scheme or port
}

// encodeCursor renders a cursor the way SLS does: base64 of the decimal integer.
func encodeCursor(v int64) string {
	return base64.StdEncoding.EncodeToString(strconv.AppendInt(nil, v, 10))
}

// decodeCursor parses a cursor; ok is false when it is not base64 of an integer.
func decodeCursor(c string) (int64, bool) {
	raw, err := base64.StdEncoding.DecodeString(c)
	if err != nil || len(raw) == 0 {
		return 0, false
	}
	v, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil {
		return 0, false
	}
	return v, true
}

// newShards splits the 128-bit hash key space evenly into n readwrite shards.
func newShards(n int, now time.Time) []*shard {
	shards := make([]*shard, n)
	for i := range n {
		shards[i] = newShard(i, splitKey(i, n), splitKey(i+1, n), now)
	}
	return shards
}

// newShard is an empty readwrite shard. Its cursors start at its creation
// time in ns plus id<<40, so shards created together still get distinct ones.
func newShard(id int, beginKey, endKey string, now time.Time) *shard {
	return &shard{
		id:         id,
		status:     shardReadWrite,
		beginKey:   beginKey,
		endKey:     endKey,
		createdAt:  now,
		cursorBase: now.UnixNano() + int64(id)<<40,
	}
}

// splitKey returns the i-th of n boundaries of the MD5 key space as 32 hex digits.
func splitKey(i, n int) string {
	if i >= n {
		return "ffffffffffffffffffffffffffffffff"
	}
	space := new(big.Int).Lsh(big.NewInt(1), 128)
	key := new(big.Int).Mul(space, big.NewInt(int64(i)))
	key.Div(key, big.NewInt(int64(n)))
	return fmt.Sprintf("%032x", key)
}

// endIndex is the index one past the newest group: the next write position.
func (s *shard) endIndex() int64 { return s.first + int64(len(s.groups)) }

// endCursorValue is the integer of the end cursor.
func (s *shard) endCursorValue() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cursorBase + s.endIndex()
}

// append stores a group and applies retention. The caller holds no lock.
func (s *shard) append(g *storedGroup, keep Retention) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.groups = append(s.groups, g)
	s.rawBytes += int64(g.rawLen)
	s.applyRetentionLocked(keep, g.receiveTime)
	return s.cursorBase + s.endIndex() - 1
}

func (s *shard) applyRetentionLocked(keep Retention, now time.Time) {
	drop := 0
	for drop < len(s.groups)-1 { // always keep the newest group
		g := s.groups[drop]
		tooBig := keep.MaxBytesPerShard > 0 && s.rawBytes > keep.MaxBytesPerShard
		tooOld := keep.MaxAge > 0 && now.Sub(g.receiveTime) > keep.MaxAge
		if !tooBig && !tooOld {
			break
		}
		s.rawBytes -= int64(g.rawLen)
		drop++
	}
	if drop == 0 {
		return
	}
	clear(s.groups[:drop])
	s.groups = s.groups[drop:]
	s.first += int64(drop)
	// Reclaim the array once most of it is dead space.
	if cap(s.groups) > 1024 && len(s.groups) < cap(s.groups)/4 {
		s.groups = append(make([]*storedGroup, 0, len(s.groups)*2), s.groups...)
	}
}

// cursorAt returns the cursor for a position given as begin, end or a unix time.
func (s *shard) cursorAt(from string) (string, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	switch from {
	case "begin":
		return encodeCursor(s.cursorBase + s.first), true
	case "end":
		return encodeCursor(s.cursorBase + s.endIndex()), true
	}
	sec, err := strconv.ParseInt(from, 10, 64)
	if err != nil || sec < 0 {
		return "", false
	}
	at := time.Unix(sec, 0)
	// Receive times are non-decreasing within a shard, so binary search works.
	i := sort.Search(len(s.groups), func(i int) bool { return !s.groups[i].receiveTime.Before(at) })
	return encodeCursor(s.cursorBase + s.first + int64(i)), true
}

// indexOf turns a cursor into a group index, checking it lies in [first, end].
func (s *shard) indexOfLocked(cursor string) (int64, bool) {
	v, ok := decodeCursor(cursor)
	if !ok {
		return 0, false
	}
	idx := v - s.cursorBase
	if idx < s.first || idx > s.endIndex() {
		return 0, false
	}
	return idx, true
}

// cursorTime returns the receive time of the group at cursor; at the end
// position it is the newest group's time (zero for an empty shard).
func (s *shard) cursorTime(cursor string) (time.Time, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	idx, ok := s.indexOfLocked(cursor)
	if !ok {
		return time.Time{}, false
	}
	if idx == s.endIndex() {
		if len(s.groups) == 0 {
			return time.Time{}, true
		}
		return s.groups[len(s.groups)-1].receiveTime, true
	}
	return s.groups[idx-s.first].receiveTime, true
}

// pullResult is what a pull selected: the groups and the cursors around them.
type pullResult struct {
	groups     []*storedGroup
	nextCursor string
	lastCursor int64 // integer cursor of the last returned group; valid when len(groups) > 0
}

// read selects up to count groups from cursor, stopping before endCursor (if
// set) and once maxRawBytes is reached (at least one group is returned).
func (s *shard) read(cursor, endCursor string, count int, maxRawBytes int) (pullResult, *APIError) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	from, ok := s.indexOfLocked(cursor)
	if !ok {
		return pullResult{}, errInvalidCursor(cursor)
	}
	to := s.endIndex()
	if endCursor != "" {
		end, ok := s.indexOfLocked(endCursor)
		if !ok {
			return pullResult{}, errInvalidCursor(endCursor)
		}
		to = min(to, end)
	}
	to = max(from, min(to, from+int64(count)))
	res := pullResult{}
	raw := 0
	for idx := from; idx < to; idx++ {
		g := s.groups[idx-s.first]
		if len(res.groups) > 0 && raw+g.rawLen > maxRawBytes {
			break
		}
		raw += g.rawLen
		res.groups = append(res.groups, g)
	}
	next := from + int64(len(res.groups))
	res.nextCursor = encodeCursor(s.cursorBase + next)
	res.lastCursor = s.cursorBase + next - 1
	return res, nil
}

// stats returns the number of retained groups and logs and the raw bytes.
func (s *shard) stats() (groups, logs int, rawBytes int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, g := range s.groups {
		logs += g.logCount
	}
	return len(s.groups), logs, s.rawBytes
}

// shardByID returns the shard or nil.
func (l *logstore) shardByID(id int) *shard {
	l.shardsMu.RLock()
	defer l.shardsMu.RUnlock()
	return l.shardByIDLocked(id)
}

func (l *logstore) shardByIDLocked(id int) *shard {
	if id < 0 || id >= len(l.shards) {
		return nil
	}
	return l.shards[id]
}

// shardInfo is a shard as ListShards describes it.
type shardInfo struct {
	ShardID           int    `json:"shardID"`
	Status            string `json:"status"`
	InclusiveBeginKey string `json:"inclusiveBeginKey"`
	ExclusiveEndKey   string `json:"exclusiveEndKey"`
	CreateTime        int64  `json:"createTime"` // unix seconds; the SDK needs a number
}

func (s *shard) infoLocked() shardInfo {
	return shardInfo{s.id, s.status, s.beginKey, s.endKey, s.createdAt.Unix()}
}

// shardSnapshot lists every shard, readonly ones included, in ID order.
func (l *logstore) shardSnapshot() ([]*shard, []shardInfo) {
	l.shardsMu.RLock()
	defer l.shardsMu.RUnlock()
	infos := make([]shardInfo, len(l.shards))
	for i, sh := range l.shards {
		infos[i] = sh.infoLocked()
	}
	return append([]*shard(nil), l.shards...), infos
}

// readWriteShardCount is what GetLogStore reports as shardCount.
func (l *logstore) readWriteShardCount() int {
	l.shardsMu.RLock()
	defer l.shardsMu.RUnlock()
	n := 0
	for _, sh := range l.shards {
		if sh.status == shardReadWrite {
			n++
		}
	}
	return n
}

// maxHashKey ends the last shard's range. Ranges are [begin, end), so the key
// ffff...ff itself belongs to the readwrite shard that ends there.
const maxHashKey = "ffffffffffffffffffffffffffffffff"

// shardForKeyLocked returns the readwrite shard whose key range holds hashKey;
// the caller holds shardsMu.
func (l *logstore) shardForKeyLocked(hashKey string) *shard {
	for _, s := range l.shards {
		if s.status == shardReadWrite && hashKey >= s.beginKey && (hashKey < s.endKey || s.endKey == maxHashKey) {
			return s
		}
	}
	return nil
}

// nextWritableShardLocked picks readwrite shards round-robin; the caller holds shardsMu.
func (l *logstore) nextWritableShardLocked() *shard {
	for range l.shards {
		sh := l.shards[(l.nextLB.Add(1)-1)%uint64(len(l.shards))]
		if sh.status == shardReadWrite {
			return sh
		}
	}
	return nil
}

// writeGroup appends g to the shard pick chooses, holding the shard list's
// read lock throughout so that no split or merge seals the shard meanwhile.
func (l *logstore) writeGroup(g *storedGroup, pick func() *shard) *APIError {
	l.shardsMu.RLock()
	defer l.shardsMu.RUnlock()
	sh := pick()
	if sh == nil {
		return newAPIError(http.StatusBadRequest, "LogStoreWithoutShard", "logstore %s has no writable shard", l.name)
	}
	if sh.status != shardReadWrite {
		return errParameterInvalid("shard %d is readonly", sh.id)
	}
	sh.append(g, l.retention)
	return nil
}

// compressorPool keeps lz4 compressors (each holds a 64 KiB hash table).
var compressorPool = sync.Pool{New: func() any { return new(lz4.Compressor) }}

// newStoredGroup frames one encoded LogGroup as a LogGroupList entry and compresses it.
func newStoredGroup(encodedGroup []byte, logCount int, receivedAt time.Time) *storedGroup {
	framed := make([]byte, 0, len(encodedGroup)+11)
	framed = append(framed, 0x0a) // LogGroupList.LogGroups, field 1, wire type 2
	framed = appendVarint(framed, uint64(len(encodedGroup)))
	framed = append(framed, encodedGroup...)
	c := compressorPool.Get().(*lz4.Compressor)
	seg := newSegment(framed, c)
	compressorPool.Put(c)
	return &storedGroup{segment: seg, receiveTime: receivedAt, logCount: logCount}
}

func appendVarint(dst []byte, v uint64) []byte {
	for v >= 0x80 {
		dst = append(dst, byte(v)|0x80)
		v >>= 7
	}
	return append(dst, byte(v))
}
