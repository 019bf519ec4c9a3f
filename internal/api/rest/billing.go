package rest

import (
	"bytes"
	"net/http"
	"strings"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

func (s *Server) billingSvc() (domain.BillingService, error) {
	if s.opts.billing == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "usage and billing are not enabled on this server")
	}
	return s.opts.billing, nil
}

// billingCall returns the caller and the billing service for an authenticated route. A
// platform admin may name another team with ?team_id=.
func (s *Server) billingCall(r *http.Request) (domain.Principal, domain.BillingService, error) {
	bs, err := s.billingSvc()
	if err != nil {
		return domain.Principal{}, nil, err
	}
	p, err := edge.Principal(r)
	if err != nil {
		return p, nil, err
	}
	p, err = p.ActingFor(r.URL.Query().Get("team_id"))
	return p, bs, err
}

func (s *Server) usage(w http.ResponseWriter, r *http.Request) error {
	p, bs, err := s.billingCall(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	uq := domain.UsageQuery{GroupBy: q.Get("group_by"), SandboxID: q.Get("sandbox_id")}
	if uq.From, err = edge.TimeParam(q.Get("from"), "from"); err != nil {
		return err
	}
	if uq.To, err = edge.TimeParam(q.Get("to"), "to"); err != nil {
		return err
	}
	rep, err := bs.Usage(r.Context(), p, uq)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toUsageResponse(rep))
	return nil
}

func (s *Server) plans(w http.ResponseWriter, r *http.Request) error {
	bs, err := s.billingSvc()
	if err != nil {
		return err
	}
	resp := listPlansResponse{Plans: []planJSON{}}
	for _, p := range bs.Plans(r.Context()) {
		resp.Plans = append(resp.Plans, toPlanJSON(p))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) listInvoices(w http.ResponseWriter, r *http.Request) error {
	p, bs, err := s.billingCall(r)
	if err != nil {
		return err
	}
	invs, err := bs.Invoices(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listInvoicesResponse{Invoices: make([]invoiceJSON, 0, len(invs))}
	for _, inv := range invs {
		resp.Invoices = append(resp.Invoices, toInvoiceJSON(inv))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) getInvoice(w http.ResponseWriter, r *http.Request) error {
	p, bs, err := s.billingCall(r)
	if err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	if format == "" && strings.Contains(r.Header.Get("Accept"), "text/csv") {
		format = "csv"
	}
	if format != "" && format != "json" && format != "csv" {
		return domain.Invalid("format", "format %q is not supported: use json or csv", format)
	}
	inv, err := bs.Invoice(r.Context(), p, r.PathValue("period"))
	if err != nil {
		return err
	}
	if format == "csv" {
		if s.opts.invoiceCSV == nil {
			return domain.Errorf(domain.KindUnavailable, "CSV export is not enabled on this server")
		}
		var buf bytes.Buffer
		if err := s.opts.invoiceCSV(&buf, inv); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", `attachment; filename="`+inv.ID+`.csv"`)
		_, err := w.Write(buf.Bytes())
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toInvoiceJSON(inv))
	return nil
}
