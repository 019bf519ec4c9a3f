package billing

import (
	"bytes"
	"errors"
	"testing"

	"github.com/warren-sh/warren/internal/domain"
)

func TestWriteCSV(t *testing.T) {
	team := Plan{ID: "team", Name: "Team", MonthlyPrice: d("150"), IncludedHours: d("2"),
		IncludedConcurrency: 10, PerMinute: d("0.01"), MinimumCharge: d("0.05")}
	inv, err := Compute(&domain.Team{ID: "t1"}, team, nov, dec, workload(), day(15))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		inv  *domain.Invoice
		want string
	}{{
		name: "team invoice",
		inv:  inv,
		want: "description,quantity,unit,unit_price,amount\r\n" +
			"\"Team plan, 2026-11, 2 sandbox-hours included, up to 10 sandboxes at once\",1,month,150,150.00\r\n" +
			"Sandbox minutes beyond the 2 included hours,31.5,minute,0.01,0.32\r\n" +
			"CPU time,1.5,CPU-hour,0,0.00\r\n" +
			"Memory (1 GB = 1024 MB),1.125,GB-hour,0,0.00\r\n" +
			"\"Disk (1 GB = 1024 MB, 1 month = 30 days)\",0.277778,GB-month,0,0.00\r\n" +
			"Network traffic in + out (1 GB = 1024^3 bytes),1.5,GB,0,0.00\r\n" +
			"total,,,,150.32\r\n",
	}, {
		name: "quotes and line breaks (CRLF inside fields too)",
		inv: &domain.Invoice{Total: "0.00", Lines: []domain.InvoiceLine{
			line(`Say "hi"`, "1", "unit\nwith newline", "0", "0.00"),
		}},
		want: "description,quantity,unit,unit_price,amount\r\n" +
			"\"Say \"\"hi\"\"\",1,\"unit\r\nwith newline\",0,0.00\r\n" +
			"total,,,,0.00\r\n",
	}, {
		name: "empty invoice",
		inv:  &domain.Invoice{Total: "0.00"},
		want: "description,quantity,unit,unit_price,amount\r\ntotal,,,,0.00\r\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteCSV(&buf, tt.inv); err != nil {
				t.Fatal(err)
			}
			if buf.String() != tt.want {
				t.Errorf("CSV:\n got %q\nwant %q", buf.String(), tt.want)
			}
		})
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

func TestWriteCSVError(t *testing.T) {
	boom := errors.New("disk full")
	if err := WriteCSV(failWriter{boom}, &domain.Invoice{Total: "0.00"}); !errors.Is(err, boom) {
		t.Errorf("error = %v, want %v", err, boom)
	}
}
