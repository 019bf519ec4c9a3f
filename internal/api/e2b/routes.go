package e2b

// Routes lists the E2B API's endpoints as "METHOD /path" (net/http pattern syntax), so
// that tests outside the package can hold every one to a rule (test/abuse's IDOR probes
// fail when a route that names a sandbox has no case).
func Routes() []string {
	out := make([]string, len(routeTable))
	for i, rt := range routeTable {
		out[i] = rt.method + " " + rt.path
	}
	return out
}
