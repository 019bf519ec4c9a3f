package sqlstore

import "testing"

func TestDollarPlaceholders(t *testing.T) {
	tests := []struct{ in, want string }{
		{`SELECT 1`, `SELECT 1`},
		{`SELECT a FROM t WHERE id = ? AND team_id = ?`, `SELECT a FROM t WHERE id = $1 AND team_id = $2`},
		{`VALUES (?, ?, ?)`, `VALUES ($1, $2, $3)`},
		{`WHERE a = '?' AND b = ?`, `WHERE a = '?' AND b = $1`},
		{`WHERE a = 'it''s ?' AND b = ?`, `WHERE a = 'it''s ?' AND b = $1`},
		{`SELECT "odd?name" FROM t WHERE x = ?`, `SELECT "odd?name" FROM t WHERE x = $1`},
		{`(created_at, id) < (?, ?) LIMIT ?`, `(created_at, id) < ($1, $2) LIMIT $3`},
	}
	for _, tc := range tests {
		if got := DollarPlaceholders(tc.in); got != tc.want {
			t.Errorf("DollarPlaceholders(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestMarks(t *testing.T) {
	for n, want := range map[int]string{1: "?", 3: "?, ?, ?"} {
		if got := marks(n); got != want {
			t.Errorf("marks(%d) = %q, want %q", n, got, want)
		}
	}
}
