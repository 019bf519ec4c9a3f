package sandbox

import (
	"fmt"
	"strings"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func TestReadLogEntriesKeepsTheLimit(t *testing.T) {
	var b strings.Builder
	for i := range 10000 {
		fmt.Fprintf(&b, `{"time":"2026-01-01T00:00:00Z","level":"info","msg":"line %d"}`+"\n", i)
	}
	log := b.String()
	msgs := func(es []domain.LogEntry) []string {
		out := []string{}
		for _, e := range es {
			out = append(out, e.Message)
		}
		return out
	}
	cases := []struct {
		name string
		q    domain.LogQuery
		want []string
	}{
		{"first", domain.LogQuery{Limit: 3}, []string{"line 0", "line 1", "line 2"}},
		{"last, newest first", domain.LogQuery{Limit: 3, Backward: true}, []string{"line 9999", "line 9998", "line 9997"}},
		{"search", domain.LogQuery{Limit: 2, Search: "line 77", Backward: true}, []string{"line 7799", "line 7798"}},
		{"fewer than the limit", domain.LogQuery{Limit: 5, Search: "line 999"}, []string{"line 999", "line 9990", "line 9991", "line 9992", "line 9993"}},
	}
	for _, c := range cases {
		got := msgs(readLogEntries(strings.NewReader(log), c.q, 0))
		if strings.Join(got, ",") != strings.Join(c.want, ",") {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
	if got := readLogEntries(strings.NewReader(""), domain.LogQuery{Limit: 3}, 0); got == nil || len(got) != 0 {
		t.Errorf("an empty log gives %#v, want an empty list", got)
	}
}
