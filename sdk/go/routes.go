package warren

import (
	"fmt"
	"net/url"
	"strings"
)

// route is one endpoint as the SDK uses it. Every call goes through a route of the
// routes table, which the drift test checks against the server's OpenAPI document:
// the method and path, the success status, the request body's fields, the query
// parameters, and the JSON fields of what the SDK decodes.
type route struct {
	method string
	path   string // OpenAPI path template, e.g. "/v1/sandboxes/{id}"
	status int    // the success status the document gives
	// request is the JSON request body type (a zero value), or nil.
	request any
	// query lists the query parameters the SDK may send ("metadata.KEY" stands for
	// every metadata.<key>).
	query []string
	// response is the type the JSON response is decoded into (a zero value), or nil.
	response any
	// contentType is the success content type when it is not JSON.
	contentType string
	// events maps the SSE event names the SDK reads to their data's types; an event
	// with several shapes lists one type holding the fields of all.
	events map[string]any
}

// url fills the path template with params, each percent-encoded.
func (r *route) url(params ...string) string {
	out, i := r.path, 0
	for {
		start := strings.IndexByte(out, '{')
		if start < 0 {
			break
		}
		end := strings.IndexByte(out[start:], '}') + start
		if i >= len(params) {
			panic(fmt.Sprintf("warren: route %s %s: missing path parameters", r.method, r.path))
		}
		out = out[:start] + url.PathEscape(params[i]) + out[end+1:]
		i++
	}
	if i != len(params) {
		panic(fmt.Sprintf("warren: route %s %s: %d path parameters, want %d", r.method, r.path, len(params), i))
	}
	return out
}

var execEvents = map[string]any{
	"start": execStartWire{}, "stdout": execOutputWire{}, "stderr": execOutputWire{},
	"end": execEndWire{}, "error": errorWire{},
}

var codeEvents = map[string]any{
	CodeEventNumberOfExecutions: codeCountLine{}, CodeEventStdout: codeTextLine{}, CodeEventStderr: codeTextLine{},
	CodeEventResult: Result{}, CodeEventError: codeErrorLine{}, CodeEventEnd: codeEndLine{},
	CodeEventUnexpectedEnd: codeEndLine{},
}

// The routes the SDK calls.
var (
	routeCreateSandbox  = &route{method: "POST", path: "/v1/sandboxes", status: 201, request: createSandboxWire{}, response: SandboxInfo{}}
	routeListSandboxes  = &route{method: "GET", path: "/v1/sandboxes", status: 200, query: []string{"state", "limit", "cursor", "metadata.KEY"}, response: SandboxPage{}}
	routeGetSandbox     = &route{method: "GET", path: "/v1/sandboxes/{id}", status: 200, response: SandboxInfo{}}
	routeKillSandbox    = &route{method: "DELETE", path: "/v1/sandboxes/{id}", status: 204}
	routeSetTimeout     = &route{method: "POST", path: "/v1/sandboxes/{id}/timeout", status: 200, request: timeoutWire{}, response: SandboxInfo{}}
	routeSetNetwork     = &route{method: "PUT", path: "/v1/sandboxes/{id}/network", status: 200, request: NetworkPolicy{}, response: SandboxInfo{}}
	routeListPorts      = &route{method: "GET", path: "/v1/sandboxes/{id}/ports", status: 200, response: portList{}}
	routeExecCommand    = &route{method: "POST", path: "/v1/sandboxes/{id}/commands", status: 200, request: execWire{}, contentType: "text/event-stream", events: execEvents}
	routeStartCommand   = &route{method: "POST", path: "/v1/sandboxes/{id}/commands", status: 201, request: execWire{}, response: execStartWire{}}
	routeRunCode        = &route{method: "POST", path: "/v1/sandboxes/{id}/execute", status: 200, request: runCodeWire{}, contentType: "text/event-stream", events: codeEvents}
	routeCreateContext  = &route{method: "POST", path: "/v1/sandboxes/{id}/contexts", status: 201, request: codeContextWire{}, response: CodeContext{}}
	routeListContexts   = &route{method: "GET", path: "/v1/sandboxes/{id}/contexts", status: 200, response: codeContextList{}}
	routeDeleteContext  = &route{method: "DELETE", path: "/v1/sandboxes/{id}/contexts/{context_id}", status: 204}
	routeRestartContext = &route{method: "POST", path: "/v1/sandboxes/{id}/contexts/{context_id}/restart", status: 204}
	routeWriteFile      = &route{method: "PUT", path: "/v1/sandboxes/{id}/files/content", status: 200, query: []string{"path", "user"}, response: FileInfo{}}
	routeReadFile       = &route{method: "GET", path: "/v1/sandboxes/{id}/files/content", status: 200, query: []string{"path", "user"}, contentType: "application/octet-stream"}
	routeListFiles      = &route{method: "GET", path: "/v1/sandboxes/{id}/files", status: 200, query: []string{"path", "user", "depth"}, response: fileList{}}
	routeDeleteFile     = &route{method: "DELETE", path: "/v1/sandboxes/{id}/files", status: 204, query: []string{"path", "user"}}
	routeStatFile       = &route{method: "GET", path: "/v1/sandboxes/{id}/files/stat", status: 200, query: []string{"path", "user"}, response: FileInfo{}}
	routeMakeDir        = &route{method: "POST", path: "/v1/sandboxes/{id}/files/dir", status: 201, query: []string{"path", "user"}, response: FileInfo{}}
	routeMoveFile       = &route{method: "POST", path: "/v1/sandboxes/{id}/files/move", status: 200, query: []string{"user"}, request: moveWire{}, response: FileInfo{}}
	routeTemplates      = &route{method: "GET", path: "/v1/templates", status: 200, response: templateList{}}

	routePauseSandbox   = &route{method: "POST", path: "/v1/sandboxes/{id}/pause", status: 200, response: SandboxInfo{}}
	routeResumeSandbox  = &route{method: "POST", path: "/v1/sandboxes/{id}/resume", status: 200, request: resumeWire{}, response: SandboxInfo{}}
	routeForkSandbox    = &route{method: "POST", path: "/v1/sandboxes/{id}/fork", status: 201, request: forkWire{}, response: forkList{}}
	routeCreateSnapshot = &route{method: "POST", path: "/v1/sandboxes/{id}/snapshots", status: 201, request: createSnapshotWire{}, response: Snapshot{}}
	routeListSnapshots  = &route{method: "GET", path: "/v1/snapshots", status: 200, query: []string{"sandbox_id", "limit", "cursor"}, response: SnapshotPage{}}
	routeGetSnapshot    = &route{method: "GET", path: "/v1/snapshots/{id}", status: 200, response: Snapshot{}}
	routeDeleteSnapshot = &route{method: "DELETE", path: "/v1/snapshots/{id}", status: 204}
	routePools          = &route{method: "GET", path: "/v1/pools", status: 200, response: poolList{}}
	routeListNodes      = &route{method: "GET", path: "/v1/nodes", status: 200, response: nodeList{}}
	routeDrainNode      = &route{method: "POST", path: "/v1/nodes/{name}/drain", status: 200, response: Node{}}
	routeUndrainNode    = &route{method: "POST", path: "/v1/nodes/{name}/undrain", status: 200, response: Node{}}

	routeListProcesses     = &route{method: "GET", path: "/v1/sandboxes/{id}/processes", status: 200, response: processList{}}
	routeProcessEvents     = &route{method: "GET", path: "/v1/sandboxes/{id}/processes/{pid}/events", status: 200, contentType: "text/event-stream", events: execEvents}
	routeProcessStdin      = &route{method: "POST", path: "/v1/sandboxes/{id}/processes/{pid}/stdin", status: 204, request: stdinWire{}}
	routeProcessStdinClose = &route{method: "POST", path: "/v1/sandboxes/{id}/processes/{pid}/stdin/close", status: 204}
	routeProcessSignal     = &route{method: "POST", path: "/v1/sandboxes/{id}/processes/{pid}/signal", status: 204, request: signalWire{}}

	routeCreateKey = &route{method: "POST", path: "/v1/keys", status: 201, request: createKeyWire{}, response: CreatedKey{}}
	routeListKeys  = &route{method: "GET", path: "/v1/keys", status: 200, response: keyList{}}
	routeRevokeKey = &route{method: "DELETE", path: "/v1/keys/{id}", status: 204}

	routeLogin      = &route{method: "POST", path: "/v1/auth/login", status: 200, request: loginWire{}, response: Session{}}
	routeLogout     = &route{method: "POST", path: "/v1/auth/logout", status: 204}
	routeMe         = &route{method: "GET", path: "/v1/me", status: 200, response: Me{}}
	routeCreateTeam = &route{method: "POST", path: "/v1/teams", status: 201, request: teamWire{}, response: Team{}}
	routeListTeams  = &route{method: "GET", path: "/v1/teams", status: 200, response: teamList{}}
	routeGetTeam    = &route{method: "GET", path: "/v1/teams/{id}", status: 200, response: Team{}}
	routeUpdateTeam = &route{method: "PATCH", path: "/v1/teams/{id}", status: 200, request: teamWire{}, response: Team{}}
	routeCreateUser = &route{method: "POST", path: "/v1/users", status: 201, request: createUserWire{}, response: User{}}
	routeListUsers  = &route{method: "GET", path: "/v1/users", status: 200, query: []string{"team_id"}, response: userList{}}
	routeUpdateUser = &route{method: "PATCH", path: "/v1/users/{id}", status: 200, request: updateUserWire{}, response: User{}}
	routeDeleteUser = &route{method: "DELETE", path: "/v1/users/{id}", status: 204}
	routeAudit      = &route{method: "GET", path: "/v1/audit", status: 200, query: []string{"action", "since", "until", "before", "limit", "team_id"}, response: AuditPage{}}
	routeUsage      = &route{method: "GET", path: "/v1/usage", status: 200, query: []string{"from", "to", "group_by", "sandbox_id"}, response: UsageReport{}}
	routePlans      = &route{method: "GET", path: "/v1/plans", status: 200, response: planList{}}
	routeInvoices   = &route{method: "GET", path: "/v1/invoices", status: 200, response: invoiceList{}}
	routeGetInvoice = &route{method: "GET", path: "/v1/invoices/{period}", status: 200, response: Invoice{}}
	routeInvoiceCSV = &route{method: "GET", path: "/v1/invoices/{period}", status: 200, query: []string{"format"}, contentType: "text/csv"}
)

// routes is the table the drift test reads: every route above.
var routes = []*route{
	routeCreateSandbox, routeListSandboxes, routeGetSandbox, routeKillSandbox, routeSetTimeout, routeSetNetwork,
	routeListPorts, routeExecCommand, routeStartCommand, routeRunCode, routeCreateContext,
	routeListContexts, routeDeleteContext, routeRestartContext, routeWriteFile, routeReadFile,
	routeListFiles, routeDeleteFile, routeStatFile, routeMakeDir, routeMoveFile, routeTemplates,
	routePauseSandbox, routeResumeSandbox, routeForkSandbox, routeCreateSnapshot, routeListSnapshots,
	routeGetSnapshot, routeDeleteSnapshot, routePools, routeListNodes, routeDrainNode, routeUndrainNode,
	routeListProcesses, routeProcessEvents, routeProcessStdin, routeProcessStdinClose, routeProcessSignal,
	routeCreateKey, routeListKeys, routeRevokeKey,
	routeLogin, routeLogout, routeMe, routeCreateTeam, routeListTeams, routeGetTeam, routeUpdateTeam,
	routeCreateUser, routeListUsers, routeUpdateUser, routeDeleteUser, routeAudit, routeUsage,
	routePlans, routeInvoices, routeGetInvoice, routeInvoiceCSV,
	routeBuildTemplate, routeGetTemplate, routeDeleteTemplate, routeListBuilds, routeGetBuild, routeBuildLogs, routeBuildLogsStream,
}
