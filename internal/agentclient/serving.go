package agentclient

// ServingMark is what warren-agent's log (its stderr: the sandbox's console log) holds
// once the agent listens: its JSON "serving" line. A node that sees it knows the agent
// is up without knocking on the sandbox's port meanwhile (see sandbox.waitServing). It
// is a hint only: the agent's /health still decides.
var ServingMark = []byte(`"msg":"serving"`)
