// ListLogStores with paging (offset, size) and the telemetryType and logstoreName filters, as ListLogStoreV2 sends them.
package slsemu

import (
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// ListLogStores page sizes. The current SLS reference gives a default of 200
// and a maximum of 500; a larger size is refused, as the 2021 reference lists
// "400 ParameterInvalid: Invalid parameter size" for it.
const (
	DefaultListLogStoresSize = 200
	MaxListLogStoresSize     = 500
)

// logstorePage is what a ListLogStores request asks for.
type logstorePage struct {
	offset, size  int
	telemetryType string // "" and "None" match every logstore
	nameContains  string
}

// parseLogstorePage reads offset, size, telemetryType and logstoreName.
// ListLogStore (V1) sends none of them; ListLogStoreV2 always sends offset and
// telemetryType (possibly empty) and size only when it is positive.
func parseLogstorePage(q url.Values) (logstorePage, *APIError) {
	page := logstorePage{size: DefaultListLogStoresSize, telemetryType: q.Get("telemetryType"), nameContains: q.Get("logstoreName")}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return page, errParameterInvalid("Invalid parameter offset: %q", v)
		}
		page.offset = n
	}
	if v := q.Get("size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxListLogStoresSize {
			return page, errParameterInvalid("Invalid parameter size: %q, must be in [1, %d]", v, MaxListLogStoresSize)
		}
		page.size = n
	}
	return page, nil
}

func (page logstorePage) matches(l *logstore) bool {
	if page.telemetryType != "" && page.telemetryType != "None" && page.telemetryType != l.telemetryType {
		return false
	}
	return strings.Contains(l.name, page.nameContains)
}

// listLogStores answers {"count": names on this page, "total": every match,
// "logstores": names}, the names sorted so pages never overlap.
func (s *Server) listLogStores(c *call) int {
	page, apiErr := parseLogstorePage(c.r.URL.Query())
	if apiErr != nil {
		return c.fail(apiErr)
	}
	c.project.mu.RLock()
	names := make([]string, 0, len(c.project.logstores))
	for name, l := range c.project.logstores {
		if page.matches(l) {
			names = append(names, name)
		}
	}
	c.project.mu.RUnlock()
	sort.Strings(names)
	total := len(names)
	from := min(page.offset, total)
	to := min(from+page.size, total)
	names = names[from:to]
	return c.ok(map[string]any{"count": len(names), "total": total, "logstores": names})
}
