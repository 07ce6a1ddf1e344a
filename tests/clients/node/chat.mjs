// One chat completion through the official OpenAI Node SDK at its default settings (2 retries,
// 10-minute timeout), as a user's code makes it. Prints one JSON line: what the caller saw.
// Usage: node chat.mjs BASE_URL API_KEY MODEL
import OpenAI from "openai";

const [baseURL, apiKey, model] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey });
const started = performance.now();
const report = (outcome) =>
  console.log(JSON.stringify({ ...outcome, seconds: (performance.now() - started) / 1000 }));
try {
  const completion = await client.chat.completions.create({
    model,
    messages: [{ role: "user", content: "hi" }],
  });
  report({ ok: true, content: completion.choices[0].message.content, request_id: completion._request_id });
} catch (error) {
  report({ ok: false, error: error.constructor.name, status: error.status, code: error.code ?? null });
}
