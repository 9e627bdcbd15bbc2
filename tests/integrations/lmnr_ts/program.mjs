// The program of tests/integrations/test_lmnr_ts.py: two conversations of two turns,
// each turn one observe() span carrying its session and user, sent by the Laminar
// TypeScript SDK to Threadline over gRPC (its default) or OTLP/HTTP (forceHttp).
import { Laminar, observe } from "@lmnr-ai/lmnr";

const env = JSON.parse(process.env.TL_TEST_PROGRAM);
const server = new URL(env.threadline_url);
// The SDK drops a port written inside baseUrl: the host goes there, the port apart.
const options = {
  projectApiKey: env.api_key,
  baseUrl: `${server.protocol}//${server.hostname}`,
  instrumentModules: {},
};
if (env.transport === "grpc") {
  options.grpcPort = Number(env.grpc_port);
} else {
  options.httpPort = Number(server.port);
  options.forceHttp = true;
}
Laminar.initialize(options);

for (const session of env.sessions) {
  for (const question of session.questions) {
    await observe(
      { name: "support-turn", sessionId: session.id, userId: session.user, tags: ["ts"] },
      async (message) => `Answer: ${message}`,
      question,
    );
    // Turns a moment apart, as a person types: their traces sort by start time.
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
await Laminar.flush();
await Laminar.shutdown();
