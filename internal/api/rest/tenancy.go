package rest

import (
	"net/http"
	"strconv"

	"github.com/warren-sh/warren/internal/api/edge"
	"github.com/warren-sh/warren/internal/domain"
)

// loginsPerMinute bounds password guesses per client address.
const loginsPerMinute = 10

// enabled returns svc and the caller of an authenticated route, or a KindUnavailable
// error naming what when the server was built without svc.
func enabled[T any](r *http.Request, svc T, what string) (domain.Principal, T, error) {
	if any(svc) == nil {
		var none T
		return domain.Principal{}, none, domain.Errorf(domain.KindUnavailable, "%s is not enabled on this server", what)
	}
	p, err := edge.Principal(r)
	return p, svc, err
}

// teamCall returns the caller and the team service (WithTeams).
func (s *Server) teamCall(r *http.Request) (domain.Principal, domain.TeamService, error) {
	return enabled(r, s.opts.teams, "team management")
}

// userCall returns the caller and the user service (WithUsers).
func (s *Server) userCall(r *http.Request) (domain.Principal, domain.UserService, error) {
	return enabled(r, s.opts.users, "user management")
}

// auditCall returns the caller and the audit log (WithAudit).
func (s *Server) auditCall(r *http.Request) (domain.Principal, domain.AuditLog, error) {
	return enabled(r, s.opts.audit, "the audit log")
}

// sessionSvc returns the session service (WithSessions).
func (s *Server) sessionSvc() (domain.SessionService, error) {
	if s.opts.sessions == nil {
		return nil, domain.Errorf(domain.KindUnavailable, "console logins are not enabled on this server: use an API key")
	}
	return s.opts.sessions, nil
}

// checkLogin rate-limits the client's address, reads {email, password} and logs in:
// the steps /v1/auth/login and /console/login share.
func (s *Server) checkLogin(w http.ResponseWriter, r *http.Request) (*domain.Session, error) {
	ss, err := s.sessionSvc()
	if err != nil {
		return nil, err
	}
	if err := edge.Limit(r.Context(), s.opts.rateLimit, "login:"+edge.ClientIP(r), loginsPerMinute, "logins from this address"); err != nil {
		return nil, err
	}
	var req loginRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return nil, err
	}
	return ss.Login(r.Context(), req.Email, req.Password)
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) error {
	sess, err := s.checkLogin(w, r)
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, loginResponse{Token: sess.Token, ExpiresAt: sess.ExpiresAt.UTC(),
		User: toUserJSON(sess.User), Team: toTeamJSON(sess.Team, nil)})
	return nil
}

// logout ends every session of the calling session's user.
func (s *Server) logout(w http.ResponseWriter, r *http.Request) error {
	ss, err := s.sessionSvc()
	if err != nil {
		return err
	}
	p, err := edge.Principal(r)
	if err != nil {
		return err
	}
	if err := ss.Logout(r.Context(), p); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) error {
	p, ts, err := s.teamCall(r)
	if err != nil {
		return err
	}
	// Everyone may see their own team, whatever their scopes.
	self := p
	self.Scopes = append([]domain.Scope{domain.ScopeTeamRead}, p.Scopes...)
	t, u, err := ts.GetTeam(r.Context(), self, p.TeamID)
	if err != nil {
		return err
	}
	resp := meResponse{Team: toTeamJSON(t, &u), KeyID: p.KeyID, Scopes: p.Scopes, Admin: p.Admin}
	if resp.Scopes == nil {
		resp.Scopes = []domain.Scope{}
	}
	if p.UserID != "" && s.opts.users != nil {
		if user, err := s.opts.users.GetUser(r.Context(), domain.Principal{TeamID: p.TeamID, UserID: p.UserID, Scopes: []domain.Scope{domain.ScopeTeamRead}}, p.UserID); err == nil {
			uj := toUserJSON(user)
			resp.User = &uj
		}
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request) error {
	p, ts, err := s.teamCall(r)
	if err != nil {
		return err
	}
	var req teamRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := ts.CreateTeam(r.Context(), p, req.spec())
	if err != nil {
		return err
	}
	edge.SetTarget(r, t.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, toTeamJSON(t, &domain.QuotaUsage{}))
	return nil
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request) error {
	p, ts, err := s.teamCall(r)
	if err != nil {
		return err
	}
	teams, err := ts.ListTeams(r.Context(), p)
	if err != nil {
		return err
	}
	resp := listTeamsResponse{Teams: make([]teamJSON, 0, len(teams))}
	for _, t := range teams {
		resp.Teams = append(resp.Teams, toTeamJSON(t, nil))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) getTeam(w http.ResponseWriter, r *http.Request) error {
	p, ts, err := s.teamCall(r)
	if err != nil {
		return err
	}
	t, u, err := ts.GetTeam(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toTeamJSON(t, &u))
	return nil
}

func (s *Server) updateTeam(w http.ResponseWriter, r *http.Request) error {
	p, ts, err := s.teamCall(r)
	if err != nil {
		return err
	}
	var req teamRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	t, err := ts.UpdateTeam(r.Context(), p, r.PathValue("id"), req.spec())
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toTeamJSON(t, nil))
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request) error {
	p, us, err := s.userCall(r)
	if err != nil {
		return err
	}
	var req createUserRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := us.CreateUser(r.Context(), p, domain.UserSpec{TeamID: req.TeamID, Email: req.Email, Name: req.Name, Password: req.Password, Role: req.Role})
	if err != nil {
		return err
	}
	edge.SetTarget(r, u.ID)
	s.edge.WriteJSON(w, r, http.StatusCreated, toUserJSON(u))
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) error {
	p, us, err := s.userCall(r)
	if err != nil {
		return err
	}
	users, err := us.ListUsers(r.Context(), p, r.URL.Query().Get("team_id"))
	if err != nil {
		return err
	}
	resp := listUsersResponse{Users: make([]userJSON, 0, len(users))}
	for _, u := range users {
		resp.Users = append(resp.Users, toUserJSON(u))
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) error {
	p, us, err := s.userCall(r)
	if err != nil {
		return err
	}
	var req updateUserRequest
	if err := s.decodeJSON(w, r, &req); err != nil {
		return err
	}
	u, err := us.UpdateUser(r.Context(), p, r.PathValue("id"), domain.UserPatch{Name: req.Name, Role: req.Role,
		Password: req.Password, CurrentPassword: req.CurrentPassword})
	if err != nil {
		return err
	}
	s.edge.WriteJSON(w, r, http.StatusOK, toUserJSON(u))
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) error {
	p, us, err := s.userCall(r)
	if err != nil {
		return err
	}
	if err := us.DeleteUser(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request) error {
	p, al, err := s.auditCall(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	f := domain.AuditFilter{TeamID: q.Get("team_id"), Action: q.Get("action")}
	if f.Since, err = edge.TimeParam(q.Get("since"), "since"); err != nil {
		return err
	}
	if f.Until, err = edge.TimeParam(q.Get("until"), "until"); err != nil {
		return err
	}
	if v := q.Get("before"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil || f.BeforeID <= 0 {
			return domain.Invalid("before", "before must be an entry id from a previous page's next")
		}
	}
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 1000 {
			return domain.Invalid("limit", "limit must be a number between 1 and 1000")
		}
	}
	entries, err := al.Audit(r.Context(), p, f)
	if err != nil {
		return err
	}
	limit := f.Limit
	if limit == 0 {
		limit = 100
	}
	resp := listAuditResponse{Entries: make([]auditJSON, 0, len(entries))}
	for _, e := range entries {
		d := e.Details
		if d == nil {
			d = map[string]string{}
		}
		resp.Entries = append(resp.Entries, auditJSON{ID: e.ID, At: e.At.UTC(), ActorType: e.ActorType, ActorID: e.ActorID,
			Action: e.Action, Target: e.Target, Status: e.Status, RemoteAddr: e.RemoteAddr, RequestID: e.RequestID, Details: d})
	}
	if len(entries) == limit && len(entries) > 0 {
		resp.Next = strconv.FormatInt(entries[len(entries)-1].ID, 10)
	}
	s.edge.WriteJSON(w, r, http.StatusOK, resp)
	return nil
}
