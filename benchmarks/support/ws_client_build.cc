// Compiles the tests' WebSocket client (tests/support/ws_client.cc) into the benchmarks, which
// do not link the test support library: one client, shared by tests and benchmarks.
#include "tests/support/ws_client.cc"  // NOLINT(bugprone-suspicious-include)
