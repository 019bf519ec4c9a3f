package billing

import (
	"encoding/csv"
	"io"

	"github.com/warren-sh/warren/internal/domain"
)

// csvHeader is the first row of an invoice's CSV export.
var csvHeader = []string{"description", "quantity", "unit", "unit_price", "amount"}

// WriteCSV writes inv as RFC 4180 CSV (CRLF line ends): a header row
// description,quantity,unit,unit_price,amount, one row per line, and a last row
// total,,,,<total>. Amounts are in the invoice's currency.
func WriteCSV(w io.Writer, inv *domain.Invoice) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	rows := make([][]string, 0, len(inv.Lines)+2)
	rows = append(rows, csvHeader)
	for _, l := range inv.Lines {
		rows = append(rows, []string{l.Description, l.Quantity, l.Unit, l.UnitPrice, l.Amount})
	}
	rows = append(rows, []string{"total", "", "", "", inv.Total})
	return cw.WriteAll(rows) // WriteAll flushes and returns the first error.
}
