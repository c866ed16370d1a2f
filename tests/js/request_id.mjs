// Drives tapwire with the AWS SDK for JavaScript v3 through a recording proxy, and prints,
// per call, the request ID the SDK reports ($metadata.requestId, which smithy-generated
// SDKs read only from the x-amzn-requestid header) beside the one in the XML body.
// Usage: node request_id.mjs http://127.0.0.1:PORT
import http from "node:http";
import { EC2Client, DescribeTrafficMirrorFiltersCommand, DeleteTrafficMirrorFilterCommand } from "@aws-sdk/client-ec2";

const upstream = new URL(process.argv[2]);
const bodies = [];
const proxy = http.createServer((req, res) => {
  const out = http.request({ host: upstream.hostname, port: upstream.port, path: req.url, method: req.method, headers: req.headers }, (up) => {
    const chunks = [];
    up.on("data", (c) => chunks.push(c));
    up.on("end", () => {
      const body = Buffer.concat(chunks);
      bodies.push(body.toString());
      res.writeHead(up.statusCode, up.headers);
      res.end(body);
    });
  });
  req.pipe(out);
});
await new Promise((ok) => proxy.listen(0, "127.0.0.1", ok));
const client = new EC2Client({
  endpoint: `http://127.0.0.1:${proxy.address().port}`,
  region: process.env.AWS_REGION ?? "us-east-1",
  credentials: { accessKeyId: process.env.AWS_ACCESS_KEY_ID, secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY },
  maxAttempts: 1,
});
const bodyId = (xml) => (xml.match(/<requestId>([^<]+)<\/requestId>/i) ?? xml.match(/<RequestID>([^<]+)<\/RequestID>/))?.[1] ?? null;
const results = [];
const ok = await client.send(new DescribeTrafficMirrorFiltersCommand({}));
results.push({ call: "describe", sdk: ok.$metadata.requestId ?? null, body: bodyId(bodies.at(-1)) });
try {
  await client.send(new DeleteTrafficMirrorFilterCommand({ TrafficMirrorFilterId: "tmf-0123456789abcdef0" }));
  results.push({ call: "error", sdk: "no error", body: null });
} catch (e) {
  results.push({ call: "error", code: e.name, sdk: e.$metadata?.requestId ?? null, body: bodyId(bodies.at(-1)) });
}
console.log(JSON.stringify(results));
proxy.close();
