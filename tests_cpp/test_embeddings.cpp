// Embeddings (llm/embeddings.hpp and Client::embed). Without a network: the request
// bodies per provider (exact JSON text) and batch ranges, and parse_embed_response for
// base64 and float-list rows, index order, every shape refusal, HTTP and transport
// errors. Against the in-process server: a handler that answers each batch from its
// request body with vectors derived from the texts, in shuffled order, so that the
// client's batching, reassembly, failure and cancel paths are checked end to end.
#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/client.hpp"
#include "llmbridge/llm/embeddings.hpp"
#include "llmbridge/llm/provider_table.hpp"
#include "llmbridge/text/base64.hpp"
#include "support/test_http_server.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;
using testing::ReceivedRequest;
using testing::Reply;
using testing::TestHttpServer;

namespace {

constexpr auto kBound = std::chrono::seconds(10);  // generous: for what should be quick

// Little-endian float32 bytes, base64: what OpenAI and vLLM send for encoding_format base64.
std::string b64_floats(const std::vector<float>& v) {
  std::string bytes;
  for (float f : v) {
    std::uint32_t u = 0;
    std::memcpy(&u, &f, 4);
    for (int i = 0; i < 4; ++i) bytes += static_cast<char>((u >> (8 * i)) & 0xff);
  }
  return text::base64_encode(bytes);
}

std::string float_list(const std::vector<float>& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) s += ",";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", double(v[i]));
    s += buf;
  }
  return s + "]";
}

std::vector<float> row(const EmbeddingResult& r, std::size_t i) {
  return {r.vectors.begin() + std::ptrdiff_t(i * r.dims), r.vectors.begin() + std::ptrdiff_t((i + 1) * r.dims)};
}

http::Response reply(std::string body, long status = 200) {
  http::Response r;
  r.status = status;
  r.body = std::move(body);
  r.elapsed_ms = 2;
  return r;
}

EmbeddingResult parse(std::string_view provider, const std::string& body, std::size_t rows, long status = 200) {
  return parse_embed_response(provider_spec(provider), reply(body, status), "m", rows);
}

std::optional<std::string> header(const http::Request& r, std::string_view name) {
  for (const auto& h : r.headers)
    if (h.name == name) return h.value;
  return std::nullopt;
}

const std::vector<std::string> kTexts = {"alpha", "be\"ta", "gam\nma", "delta", "épsilon"};

http::Request build(std::string_view provider, std::string_view model, std::size_t begin, std::size_t end,
                    int dimensions = 0) {
  config::VLLMConfig vllm;
  config::OpenAIConfig openai;
  config::OllamaConfig ollama;
  openai.api_key = "sk-test";
  const config::ProviderConfig& cfg = provider == "ollama"   ? static_cast<const config::ProviderConfig&>(ollama)
                                      : provider == "openai" ? static_cast<const config::ProviderConfig&>(openai)
                                                             : static_cast<const config::ProviderConfig&>(vllm);
  return build_embed_request(provider_spec(provider), cfg, model, kTexts, begin, end, dimensions, "req-7");
}

// ---- the answering server

// The deterministic vector of one text: `dims` values from an FNV-1a hash of it, all
// exactly representable as float32.
std::vector<float> vector_for(std::string_view text, std::size_t dims = 4) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : text) h = (h ^ c) * 1099511628211ull;
  std::vector<float> v(dims);
  for (std::size_t j = 0; j < dims; ++j) v[j] = float((h >> (8 * (j % 8))) & 0xff) / 8.0f - float(j);
  return v;
}

// The texts of a request body's "input" list.
std::vector<std::string> inputs_of(const std::string& body) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(body).get(doc) != simdjson::SUCCESS) throw std::runtime_error("bad request JSON: " + body);
  simdjson::dom::array input;
  if (doc["input"].get(input) != simdjson::SUCCESS) throw std::runtime_error("no input list: " + body);
  std::vector<std::string> out;
  for (simdjson::dom::element e : input) out.emplace_back(std::string_view(e.get_string().value()));
  return out;
}

// An OpenAI answer to `texts`: data in a shuffled order (odd indexes first, then the even
// ones backwards), each row base64, usage.prompt_tokens = the number of texts.
Reply openai_answer(const std::vector<std::string>& texts, std::size_t dims = 4) {
  std::vector<std::size_t> order;
  for (std::size_t i = 1; i < texts.size(); i += 2) order.push_back(i);
  for (std::size_t i = texts.size(); i-- > 0;)
    if (i % 2 == 0) order.push_back(i);
  std::string data;
  for (std::size_t i : order) {
    if (!data.empty()) data += ",";
    data += R"({"object":"embedding","index":)" + std::to_string(i) + R"(,"embedding":")" +
            b64_floats(vector_for(texts[i], dims)) + "\"}";
  }
  Reply r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = R"({"object":"list","model":"served-emb","data":[)" + data + R"(],"usage":{"prompt_tokens":)" +
           std::to_string(texts.size()) + R"(,"total_tokens":)" + std::to_string(texts.size()) + "}}";
  return r;
}

Reply ollama_answer(const std::vector<std::string>& texts) {
  std::string rows;
  for (const auto& t : texts) rows += (rows.empty() ? "" : ",") + float_list(vector_for(t));
  Reply r;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = R"({"model":"nomic","embeddings":[)" + rows + R"(],"prompt_eval_count":)" + std::to_string(texts.size()) +
           "}";
  return r;
}

config::VLLMConfig vllm_for(const TestHttpServer& server, int max_retries = 0) {
  config::VLLMConfig c;
  c.base_url = server.url("");
  c.model = "tiny";
  c.max_retries = max_retries;
  c.retry_base_delay = 0.01;
  c.retry_max_delay = 0.02;
  c.timeout = 10;
  return c;
}

std::vector<std::string> numbered_texts(std::size_t n) {
  std::vector<std::string> t;
  for (std::size_t i = 0; i < n; ++i) t.push_back("text number " + std::to_string(i));
  return t;
}

EmbedCall embed_call(std::vector<std::string> texts, std::size_t batch_size) {
  EmbedCall c;
  c.texts = std::move(texts);
  c.batch_size = batch_size;
  return c;
}

// embed() with a bound: a hang fails the test instead of blocking ctest.
EmbeddingResult embed_bounded(Client& client, const EmbedCall& call) {
  auto p = std::make_shared<std::promise<EmbeddingResult>>();
  auto f = p->get_future();
  client.start_embed(call, [p](EmbeddingResult&& r) { p->set_value(std::move(r)); });
  REQUIRE(f.wait_for(kBound) == std::future_status::ready);
  return f.get();
}

}  // namespace

// ---------------------------------------------------------------- requests

TEST_CASE("embed request: vLLM body, path and headers", "[embeddings]") {
  const http::Request r = build("vllm", "e5", 0, 2);
  CHECK(r.method == "POST");
  CHECK(r.url == "http://localhost:8000/v1/embeddings");
  CHECK(r.body == R"({"model":"e5","input":["alpha","be\"ta"],"encoding_format":"base64"})");
  CHECK(header(r, "Content-Type") == "application/json");
  CHECK(header(r, "X-Request-Id") == "req-7");
  CHECK_FALSE(header(r, "Authorization"));
}

TEST_CASE("embed request: dimensions only when > 0", "[embeddings]") {
  CHECK(build("vllm", "e5", 0, 1, 256).body ==
        R"({"model":"e5","input":["alpha"],"encoding_format":"base64","dimensions":256})");
  CHECK(build("vllm", "e5", 0, 1, 0).body == R"({"model":"e5","input":["alpha"],"encoding_format":"base64"})");
  CHECK(build("vllm", "e5", 0, 1, -3).body == R"({"model":"e5","input":["alpha"],"encoding_format":"base64"})");
  CHECK(build("ollama", "nomic", 0, 1, 64).body == R"({"model":"nomic","input":["alpha"],"dimensions":64})");
}

TEST_CASE("embed request: OpenAI dialect omits an empty model", "[embeddings]") {
  CHECK(build("vllm", "", 0, 1).body == R"({"input":["alpha"],"encoding_format":"base64"})");
  const http::Request o = build("openai", "", 0, 1);
  CHECK(o.url == "https://api.openai.com/v1/embeddings");
  CHECK(o.body == R"({"input":["alpha"],"encoding_format":"base64"})");
  CHECK(header(o, "Authorization") == "Bearer sk-test");
  CHECK(build("openai", "text-embedding-3-small", 0, 1, 512).body ==
        R"({"model":"text-embedding-3-small","input":["alpha"],"encoding_format":"base64","dimensions":512})");
}

TEST_CASE("embed request: Ollama /api/embed, model always, no encoding_format", "[embeddings]") {
  const http::Request r = build("ollama", "nomic", 3, 5);
  CHECK(r.url == "http://localhost:11434/api/embed");
  CHECK(r.body == R"({"model":"nomic","input":["delta","épsilon"]})");
  CHECK(build("ollama", "", 0, 1).body == R"({"model":"","input":["alpha"]})");
}

TEST_CASE("embed request: the batch is the texts from begin up to end", "[embeddings]") {
  CHECK(build("vllm", "m", 0, 5).body ==
        R"({"model":"m","input":["alpha","be\"ta","gam\nma","delta","épsilon"],"encoding_format":"base64"})");
  CHECK(build("vllm", "m", 1, 3).body == R"({"model":"m","input":["be\"ta","gam\nma"],"encoding_format":"base64"})");
  CHECK(build("vllm", "m", 4, 5).body == R"({"model":"m","input":["épsilon"],"encoding_format":"base64"})");
  CHECK(build("vllm", "m", 2, 2).body == R"({"model":"m","input":[],"encoding_format":"base64"})");
  // An end past the list stops at its end.
  CHECK(build("vllm", "m", 3, 99).body == R"({"model":"m","input":["delta","épsilon"],"encoding_format":"base64"})");
}

// ---------------------------------------------------------------- responses

TEST_CASE("embed response: base64 rows decode to the packed little-endian floats", "[embeddings]") {
  const std::vector<float> a = {1.0f, -2.5f, 0.125f, 3.0e-8f};
  const std::vector<float> b = {0.0f, -0.0f, 65504.0f, -1.0f / 3.0f};
  // Known bytes for one value: 1.0f is 00 00 80 3f.
  CHECK(b64_floats({1.0f}) == text::base64_encode(std::string("\x00\x00\x80\x3f", 4)));
  const std::string body = R"({"object":"list","model":"served","data":[{"object":"embedding","index":0,"embedding":")" +
                           b64_floats(a) + R"("},{"object":"embedding","index":1,"embedding":")" + b64_floats(b) +
                           R"("}],"usage":{"prompt_tokens":12,"total_tokens":12}})";
  const EmbeddingResult r = parse("vllm", body, 2);
  REQUIRE(r.success);
  CHECK(r.error.empty());
  CHECK_FALSE(r.retryable);
  CHECK(r.rows == 2);
  CHECK(r.dims == 4);
  CHECK(row(r, 0) == a);
  CHECK(row(r, 1) == b);
  CHECK(r.prompt_tokens == 12);
  CHECK(r.model == "served");
  CHECK(r.status_code == 200);
  CHECK(r.provider == "vllm");
}

TEST_CASE("embed response: float lists when the server ignored encoding_format", "[embeddings]") {
  const EmbeddingResult r =
      parse("openai", R"({"data":[{"index":0,"embedding":[0.5,-1,2,0.1]},{"index":1,"embedding":[3,4.25,-0.75,1e-3]}]})",
            2);
  REQUIRE(r.success);
  CHECK(r.dims == 4);
  CHECK(row(r, 0) == std::vector<float>{0.5f, -1.0f, 2.0f, 0.1f});
  CHECK(row(r, 1) == std::vector<float>{3.0f, 4.25f, -0.75f, 1e-3f});
  CHECK(r.prompt_tokens == -1);  // no usage: unknown
  CHECK(r.model == "m");         // no model in the answer: the one asked for
}

TEST_CASE("embed response: rows are put back in index order", "[embeddings]") {
  std::string data;
  for (int i : {3, 0, 4, 2, 1}) {
    if (!data.empty()) data += ",";
    data += R"({"index":)" + std::to_string(i) + R"(,"embedding":")" + b64_floats({float(i), float(10 * i)}) + "\"}";
  }
  const EmbeddingResult r = parse("vllm", R"({"data":[)" + data + "]}", 5);
  REQUIRE(r.success);
  REQUIRE(r.rows == 5);
  REQUIRE(r.dims == 2);
  for (std::size_t i = 0; i < 5; ++i) CHECK(row(r, i) == std::vector<float>{float(i), float(10 * i)});
}

TEST_CASE("embed response: indexes that are not exactly 0..n-1 are refused", "[embeddings]") {
  const std::string e = b64_floats({1.0f, 2.0f});
  auto item = [&](int index) { return R"({"index":)" + std::to_string(index) + R"(,"embedding":")" + e + "\"}"; };
  SECTION("an index missing (a gap)") {
    const EmbeddingResult r = parse("vllm", R"({"data":[)" + item(0) + "," + item(2) + "]}", 2);
    CHECK_FALSE(r.success);
    CHECK(r.error == "invalid_json: the embeddings' indexes are not 0..1");
    CHECK(r.retryable);
    CHECK(r.vectors.empty());
    CHECK(r.rows == 0);
    CHECK(r.dims == 0);
  }
  SECTION("a duplicate index") {
    const EmbeddingResult r = parse("vllm", R"({"data":[)" + item(1) + "," + item(0) + "," + item(1) + "]}", 3);
    CHECK_FALSE(r.success);
    CHECK(r.error == "invalid_json: the embeddings' indexes are not 0..2");
    CHECK(r.vectors.empty());
  }
  SECTION("a negative index") {
    const EmbeddingResult r = parse("vllm", R"({"data":[)" + item(-1) + "," + item(0) + "]}", 2);
    CHECK_FALSE(r.success);
    CHECK(r.error == "invalid_json: the embeddings' indexes are not 0..1");
  }
  SECTION("no index field at all: array order") {
    // Documented fallback: an item without `index` takes its position in the array.
    const EmbeddingResult r = parse(
        "vllm", R"({"data":[{"embedding":")" + b64_floats({1, 2}) + R"("},{"embedding":")" + b64_floats({3, 4}) + "\"}]}",
        2);
    REQUIRE(r.success);
    CHECK(row(r, 0) == std::vector<float>{1, 2});
    CHECK(row(r, 1) == std::vector<float>{3, 4});
  }
}

TEST_CASE("embed response: rows of different lengths are refused", "[embeddings]") {
  const EmbeddingResult a = parse("vllm",
                                  R"({"data":[{"index":0,"embedding":")" + b64_floats({1, 2, 3}) +
                                      R"("},{"index":1,"embedding":")" + b64_floats({1, 2}) + "\"}]}",
                                  2);
  CHECK_FALSE(a.success);
  CHECK(a.error == "invalid_json: the embeddings have different lengths");
  CHECK(a.retryable);
  CHECK(a.vectors.empty());
  CHECK(a.rows == 0);
  const EmbeddingResult b = parse("vllm", R"({"data":[{"index":0,"embedding":[1,2]},{"index":1,"embedding":[1]}]})", 2);
  CHECK(b.error == "invalid_json: the embeddings have different lengths");
  const EmbeddingResult c = parse("ollama", R"({"embeddings":[[1,2],[1,2,3]]})", 2);
  CHECK(c.error == "invalid_json: the embeddings have different lengths");
  CHECK(c.vectors.empty());
}

TEST_CASE("embed response: the wrong number of rows is refused", "[embeddings]") {
  const std::string two = R"({"data":[{"index":0,"embedding":[1]},{"index":1,"embedding":[2]}]})";
  const EmbeddingResult fewer = parse("vllm", two, 3);
  CHECK_FALSE(fewer.success);
  CHECK(fewer.error == "invalid_json: 3 embeddings asked for, 2 received");
  CHECK(fewer.retryable);
  CHECK(fewer.vectors.empty());
  CHECK(fewer.rows == 0);
  CHECK(fewer.dims == 0);
  CHECK(parse("vllm", two, 1).error == "invalid_json: 1 embeddings asked for, 2 received");
  CHECK(parse("vllm", R"({"data":[]})", 1).error == "invalid_json: 1 embeddings asked for, 0 received");
  CHECK(parse("ollama", R"({"embeddings":[[1],[2]]})", 4).error == "invalid_json: 4 embeddings asked for, 2 received");
  // An empty list for an empty batch is fine.
  const EmbeddingResult none = parse("vllm", R"({"data":[]})", 0);
  CHECK(none.success);
  CHECK(none.rows == 0);
}

TEST_CASE("embed response: a missing data / embeddings list is refused", "[embeddings]") {
  CHECK(parse("vllm", R"({"object":"list"})", 1).error == "invalid_json: no 'data' list in the answer");
  CHECK(parse("vllm", R"({"data":{"index":0}})", 1).error == "invalid_json: no 'data' list in the answer");
  // An Ollama-shaped answer is not an OpenAI one, and the other way round.
  CHECK(parse("openai", R"({"embeddings":[[1]]})", 1).error == "invalid_json: no 'data' list in the answer");
  CHECK(parse("ollama", R"({"data":[{"index":0,"embedding":[1]}]})", 1).error ==
        "invalid_json: no 'embeddings' list in the answer");
  CHECK(parse("ollama", R"({"embedding":[1,2]})", 1).error == "invalid_json: no 'embeddings' list in the answer");
  const EmbeddingResult r = parse("vllm", R"({})", 1);
  CHECK(r.retryable);
  CHECK(r.raw_response == "{}");
}

TEST_CASE("embed response: rows that are neither base64 float32 nor numbers are refused", "[embeddings]") {
  const std::string kWhy = "invalid_json: an embedding is neither base64 float32 nor a list of numbers";
  // 5 bytes ("AAAAAAA=" decodes to 5): not whole float32 values.
  CHECK(text::base64_decoded_size("AAAAAAA=") == 5);
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":"AAAAAAA="}]})", 1).error == kWhy);
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":"AAA="}]})", 1).error == kWhy);  // 2 bytes
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":"AA"}]})", 1).error == kWhy);    // 1 byte
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":"not base64!"}]})", 1).error == kWhy);
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":[1,"2"]}]})", 1).error == kWhy);
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":{"x":1}}]})", 1).error == kWhy);
  CHECK(parse("vllm", R"({"data":[{"index":0}]})", 1).error == kWhy);  // no embedding at all
  CHECK(parse("vllm", R"({"data":[{"index":0,"embedding":null}]})", 1).error == kWhy);
  CHECK(parse("vllm", R"({"data":[[1,2]]})", 1).error == kWhy);  // an item that is not an object
  CHECK(parse("ollama", R"({"embeddings":[[1,null]]})", 1).error ==
        "invalid_json: an embedding is not a list of numbers");
  CHECK(parse("ollama", R"({"embeddings":["AACAPw=="]})", 1).error ==
        "invalid_json: an embedding is not a list of numbers");
  // 8 bytes is two floats: accepted.
  const EmbeddingResult ok = parse("vllm", R"({"data":[{"index":0,"embedding":")" + b64_floats({7, 8}) + "\"}]}", 1);
  REQUIRE(ok.success);
  CHECK(row(ok, 0) == std::vector<float>{7, 8});
  // Unpadded base64 is accepted too.
  std::string unpadded = b64_floats({1.5f});
  CHECK(unpadded.back() == '=');
  while (unpadded.back() == '=') unpadded.pop_back();
  const EmbeddingResult np = parse("vllm", R"({"data":[{"index":0,"embedding":")" + unpadded + "\"}]}", 1);
  REQUIRE(np.success);
  CHECK(row(np, 0) == std::vector<float>{1.5f});
}

TEST_CASE("embed response: a body that is not a JSON object is invalid_json", "[embeddings]") {
  const EmbeddingResult r = parse("vllm", "<html>oops</html>", 1);
  CHECK_FALSE(r.success);
  CHECK(r.error.rfind("invalid_json: ", 0) == 0);
  CHECK(r.retryable);
  CHECK(r.vectors.empty());
}

TEST_CASE("embed response: Ollama rows and prompt_eval_count", "[embeddings]") {
  const EmbeddingResult r =
      parse("ollama", R"({"model":"nomic","embeddings":[[0.25,-0.5,1],[2,3,4]],"prompt_eval_count":17})", 2);
  REQUIRE(r.success);
  CHECK(r.rows == 2);
  CHECK(r.dims == 3);
  CHECK(r.vectors == std::vector<float>{0.25f, -0.5f, 1.0f, 2.0f, 3.0f, 4.0f});
  CHECK(r.prompt_tokens == 17);
  CHECK(r.model == "nomic");
  CHECK(r.provider == "ollama");
  CHECK(parse("ollama", R"({"embeddings":[[1]]})", 1).prompt_tokens == -1);
}

TEST_CASE("embed response: HTTP errors follow errors.hpp", "[embeddings]") {
  const EmbeddingResult e500 = parse("vllm", R"({"error":{"message":"boom"}})", 1, 500);
  CHECK_FALSE(e500.success);
  CHECK(e500.error == "http_500");
  CHECK(e500.retryable);
  CHECK(e500.status_code == 500);
  CHECK(e500.raw_response == R"({"error":{"message":"boom"}})");
  CHECK(e500.vectors.empty());
  CHECK(e500.rows == 0);

  const EmbeddingResult e400 = parse("vllm", R"({"error":{"message":"dimensions not supported"}})", 1, 400);
  CHECK(e400.error == "http_400");
  CHECK_FALSE(e400.retryable);

  const EmbeddingResult e429 = parse("openai", R"({"error":{"message":"slow down"}})", 1, 429);
  CHECK(e429.error == "http_429");
  CHECK(e429.retryable);

  const EmbeddingResult e401 = parse("openai", R"({"error":{"message":"bad key"}})", 1, 401);
  CHECK(e401.error == "http_401");
  CHECK(e401.auth_refused);
  CHECK_FALSE(e401.retryable);

  const EmbeddingResult e404 = parse("ollama", R"({"error":"model \"x\" not found"})", 1, 404);
  CHECK(e404.error == "http_404");
  CHECK_FALSE(e404.retryable);
}

TEST_CASE("embed response: transport errors follow errors.hpp", "[embeddings]") {
  http::Response t;
  t.error = http::TransportError::kTimeout;
  t.error_message = "Operation timed out";
  const EmbeddingResult timeout = parse_embed_response(provider_spec("vllm"), t, "m", 1);
  CHECK_FALSE(timeout.success);
  CHECK(timeout.error == "timeout");
  CHECK(timeout.retryable);
  CHECK(timeout.status_code == 0);
  CHECK(timeout.vectors.empty());

  http::Response c;
  c.error = http::TransportError::kConnect;
  c.error_message = "Connection refused";
  const EmbeddingResult refused = parse_embed_response(provider_spec("ollama"), c, "m", 1);
  CHECK(refused.error == "connection_error: Connection refused");
  CHECK(refused.retryable);

  http::Response big;
  big.error = http::TransportError::kTooLarge;
  const EmbeddingResult too_large = parse_embed_response(provider_spec("vllm"), big, "m", 1, 1000);
  CHECK(too_large.error == "connection_error: response body exceeds 1000 bytes");
  CHECK_FALSE(too_large.retryable);

  http::Response x;
  x.error = http::TransportError::kCancelled;
  CHECK(parse_embed_response(provider_spec("vllm"), x, "m", 1).error == "cancelled");
}

TEST_CASE("embed response: the dimension error string", "[embeddings]") {
  CHECK(embedding_dimension_error(768, 384) == "embedding_dimension_mismatch: expected 768, got 384");
  CHECK(embedding_dimension_error(3, 0) == "embedding_dimension_mismatch: expected 3, got 0");
}

// ---------------------------------------------------------------- Client::embed

TEST_CASE("client embed: 10 texts in batches of 3 are 4 concurrent requests, rows in input order",
          "[embeddings][client]") {
  TestHttpServer server;
  // Every batch waits (up to a bound) until all 4 have arrived: they were sent together.
  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
  bool all_together = true;
  server.set_handler([&](const ReceivedRequest& req) {
    {
      std::unique_lock<std::mutex> lock(mu);
      ++arrived;
      cv.notify_all();
      if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return arrived >= 4; })) all_together = false;
    }
    if (req.path != "/v1/embeddings") return Reply{Reply::Action::kRespond, 404};
    return openai_answer(inputs_of(req.body));
  });
  Client client(vllm_for(server));
  const std::vector<std::string> texts = numbered_texts(10);
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 3));
  REQUIRE(r.success);
  CHECK(r.error.empty());
  CHECK(r.rows == 10);
  CHECK(r.dims == 4);
  REQUIRE(r.vectors.size() == 40);
  for (std::size_t i = 0; i < texts.size(); ++i) {
    INFO("row " << i);
    CHECK(row(r, i) == vector_for(texts[i]));
  }
  CHECK(r.attempts == 4);
  CHECK(r.prompt_tokens == 10);  // the batches' usage summed
  CHECK(r.model == "served-emb");
  CHECK(r.provider == "vllm");
  CHECK(r.latency_ms > 0);
  CHECK(all_together);

  const auto requests = server.requests();
  REQUIRE(requests.size() == 4);
  std::vector<std::vector<std::string>> batches;
  for (const auto& q : requests) {
    CHECK(q.path == "/v1/embeddings");
    CHECK(q.method == "POST");
    batches.push_back(inputs_of(q.body));
    CHECK(q.body.find(R"("model":"tiny")") != std::string::npos);
    CHECK(q.body.find(R"("encoding_format":"base64")") != std::string::npos);
  }
  std::sort(batches.begin(), batches.end(), [](const auto& a, const auto& b) { return a.front() < b.front(); });
  // "text number 0" < "text number 3" < "text number 6" < "text number 9" as strings.
  CHECK(batches == std::vector<std::vector<std::string>>{{texts[0], texts[1], texts[2]},
                                                        {texts[3], texts[4], texts[5]},
                                                        {texts[6], texts[7], texts[8]},
                                                        {texts[9]}});
}

TEST_CASE("client embed: one batch, and a batch size larger than the input", "[embeddings][client]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) { return openai_answer(inputs_of(req.body), 3); });
  Client client(vllm_for(server));
  const std::vector<std::string> texts = numbered_texts(5);
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 64));
  REQUIRE(r.success);
  CHECK(r.rows == 5);
  CHECK(r.dims == 3);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(row(r, i) == vector_for(texts[i], 3));
  CHECK(server.request_count() == 1);
  // batch_size 1: one request per text, still in order.
  const EmbeddingResult one = embed_bounded(client, embed_call(texts, 1));
  REQUIRE(one.success);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(row(one, i) == vector_for(texts[i], 3));
  CHECK(server.request_count() == 6);
}

TEST_CASE("client embed: the model is call.model, else embedding_model, else the client's model",
          "[embeddings][client]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) { return openai_answer(inputs_of(req.body)); });
  config::VLLMConfig cfg = vllm_for(server);
  cfg.embedding_model = "e5-large";
  Client client(cfg);
  REQUIRE(embed_bounded(client, embed_call({"a"}, 8)).success);
  EmbedCall named = embed_call({"a"}, 8);
  named.model = "bge";
  named.dimensions = 4;
  REQUIRE(embed_bounded(client, named).success);
  const auto q = server.requests();
  REQUIRE(q.size() == 2);
  CHECK(q[0].body == R"({"model":"e5-large","input":["a"],"encoding_format":"base64"})");
  CHECK(q[1].body == R"({"model":"bge","input":["a"],"encoding_format":"base64","dimensions":4})");

  Client plain(vllm_for(server));
  REQUIRE(embed_bounded(plain, embed_call({"a"}, 8)).success);
  CHECK(server.requests().back().body == R"({"model":"tiny","input":["a"],"encoding_format":"base64"})");
}

TEST_CASE("client embed: a batch answering 500 fails the whole, without vectors", "[embeddings][client]") {
  TestHttpServer server;
  const std::vector<std::string> texts = numbered_texts(10);
  // The batch holding text 4 (the second of four) always fails.
  server.set_handler([&](const ReceivedRequest& req) {
    const auto in = inputs_of(req.body);
    for (const auto& t : in)
      if (t == texts[4]) {
        Reply r;
        r.status = 500;
        r.body = R"({"error":{"message":"gpu on fire"}})";
        return r;
      }
    return openai_answer(in);
  });

  SECTION("max_retries 0: not retried") {
    Client client(vllm_for(server, 0));
    const EmbeddingResult r = embed_bounded(client, embed_call(texts, 3));
    CHECK_FALSE(r.success);
    CHECK(r.error == "http_500");
    CHECK(r.status_code == 500);
    CHECK(r.retryable);
    CHECK(r.raw_response == R"({"error":{"message":"gpu on fire"}})");
    CHECK(r.vectors.empty());
    CHECK(r.rows == 0);
    CHECK(r.dims == 0);
    CHECK(r.attempts == 4);
    CHECK(server.request_count() == 4);
  }
  SECTION("max_retries 2: retried, then failing") {
    Client client(vllm_for(server, 2));
    const EmbeddingResult r = embed_bounded(client, embed_call(texts, 3));
    CHECK_FALSE(r.success);
    CHECK(r.error == "http_500");
    CHECK(r.vectors.empty());
    CHECK(r.rows == 0);
    CHECK(r.attempts == 6);  // 3 good batches + 3 tries of the bad one
    CHECK(server.request_count() == 6);
  }
}

TEST_CASE("client embed: the first failed batch in input order is the error", "[embeddings][client]") {
  TestHttpServer server;
  const std::vector<std::string> texts = numbered_texts(9);
  // Batch 1 answers 400, batch 2 answers 503; batch 2 answers first.
  server.set_handler([&](const ReceivedRequest& req) {
    const auto in = inputs_of(req.body);
    Reply r;
    if (in.front() == texts[3]) {
      r.status = 400;
      r.delay_ms = 200;
      r.body = R"({"error":{"message":"bad"}})";
      return r;
    }
    if (in.front() == texts[6]) {
      r.status = 503;
      r.body = R"({"error":{"message":"busy"}})";
      return r;
    }
    return openai_answer(in);
  });
  Client client(vllm_for(server, 0));
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 3));
  CHECK_FALSE(r.success);
  CHECK(r.error == "http_400");
  CHECK_FALSE(r.retryable);
  CHECK(r.vectors.empty());
}

TEST_CASE("client embed: a batch that fails once and then answers is put back in place", "[embeddings][client]") {
  TestHttpServer server;
  const std::vector<std::string> texts = numbered_texts(7);
  std::mutex mu;
  bool failed_once = false;
  server.set_handler([&](const ReceivedRequest& req) {
    const auto in = inputs_of(req.body);
    if (in.front() == texts[2]) {
      std::lock_guard<std::mutex> lock(mu);
      if (!failed_once) {
        failed_once = true;
        Reply r;
        r.status = 503;
        r.body = "{}";
        return r;
      }
    }
    return openai_answer(in);
  });
  Client client(vllm_for(server, 1));
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 2));
  REQUIRE(r.success);
  REQUIRE(r.rows == 7);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(row(r, i) == vector_for(texts[i]));
  CHECK(r.attempts == 5);  // 4 batches, one tried twice
  CHECK(server.request_count() == 5);
}

TEST_CASE("client embed: a malformed batch answer fails the whole with invalid_json", "[embeddings][client]") {
  TestHttpServer server;
  const std::vector<std::string> texts = numbered_texts(6);
  server.set_handler([&](const ReceivedRequest& req) {
    auto in = inputs_of(req.body);
    if (in.front() == texts[3]) in.pop_back();  // one row short
    return openai_answer(in);
  });
  Client client(vllm_for(server, 0));
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 3));
  CHECK_FALSE(r.success);
  CHECK(r.error == "invalid_json: 3 embeddings asked for, 2 received");
  CHECK(r.vectors.empty());
}

TEST_CASE("client embed: an answer item without an embedding fails with invalid_json", "[embeddings][client]") {
  // The parse runs on the engine's I/O thread: it must fail the batch, never throw.
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest&) {
    Reply r;
    r.body = R"({"data":[{"index":0,"object":"embedding"}]})";
    return r;
  });
  Client client(vllm_for(server, 0));
  const EmbeddingResult r = embed_bounded(client, embed_call({"a"}, 4));
  CHECK_FALSE(r.success);
  CHECK(r.error == "invalid_json: an embedding is neither base64 float32 nor a list of numbers");
  // The client is still usable afterwards.
  server.set_handler([](const ReceivedRequest& req) { return openai_answer(inputs_of(req.body)); });
  CHECK(embed_bounded(client, embed_call({"a"}, 4)).success);
}

TEST_CASE("client embed: batches whose rows differ in length fail the whole", "[embeddings][client]") {
  TestHttpServer server;
  const std::vector<std::string> texts = numbered_texts(4);
  server.set_handler([&](const ReceivedRequest& req) {
    const auto in = inputs_of(req.body);
    return openai_answer(in, in.front() == texts[0] ? 4 : 5);
  });
  Client client(vllm_for(server, 0));
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 2));
  CHECK_FALSE(r.success);
  CHECK(r.error == "invalid_json: the batches' embeddings have different lengths (4 and 5)");
  CHECK(r.vectors.empty());
  CHECK(r.rows == 0);
  CHECK(r.dims == 0);
}

TEST_CASE("client embed: expected_dimensions mismatch is the dimension error", "[embeddings][client]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) { return openai_answer(inputs_of(req.body), 4); });
  Client client(vllm_for(server));
  EmbedCall call = embed_call(numbered_texts(5), 2);
  call.expected_dimensions = 8;
  const EmbeddingResult r = embed_bounded(client, call);
  CHECK_FALSE(r.success);
  CHECK(r.error == "embedding_dimension_mismatch: expected 8, got 4");
  CHECK_FALSE(r.retryable);
  CHECK(r.vectors.empty());
  CHECK(r.rows == 0);
  CHECK(r.dims == 0);
  CHECK(server.request_count() == 3);  // a wrong size is not retried

  call.expected_dimensions = 4;
  const EmbeddingResult ok = embed_bounded(client, call);
  REQUIRE(ok.success);
  CHECK(ok.dims == 4);
}

TEST_CASE("client embed: dimensions asked of the server are checked too", "[embeddings][client]") {
  // embeddings.hpp: dimensions > 0 is "asked of the server (Matryoshka models), and
  // checked". A server that ignores it and answers another size fails the call.
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) { return openai_answer(inputs_of(req.body), 4); });
  Client client(vllm_for(server));
  EmbedCall call = embed_call(numbered_texts(3), 8);
  call.dimensions = 2;
  const EmbeddingResult r = embed_bounded(client, call);
  CHECK_FALSE(r.success);
  CHECK(r.error == "embedding_dimension_mismatch: expected 2, got 4");
  CHECK(r.vectors.empty());
  CHECK(server.requests().front().body.find(R"("dimensions":2)") != std::string::npos);
}

TEST_CASE("client embed: empty texts succeed at once with 0 rows and no request", "[embeddings][client]") {
  TestHttpServer server;
  Client client(vllm_for(server));
  bool called = false;
  EmbeddingResult got;
  const auto ids = client.start_embed(embed_call({}, 3), [&](EmbeddingResult&& r) {
    called = true;
    got = std::move(r);
  });
  CHECK(ids.empty());
  REQUIRE(called);  // synchronously, on the caller's thread
  CHECK(got.success);
  CHECK(got.error.empty());
  CHECK(got.rows == 0);
  CHECK(got.dims == 0);
  CHECK(got.vectors.empty());
  CHECK(got.provider == "vllm");
  CHECK(got.model == "tiny");
  CHECK(client.embed(embed_call({}, 3)).success);
  CHECK(server.request_count() == 0);
}

TEST_CASE("client embed: batch_size 0 throws before anything is sent", "[embeddings][client]") {
  TestHttpServer server;
  Client client(vllm_for(server));
  bool called = false;
  CHECK_THROWS_AS(client.start_embed(embed_call({"a"}, 0), [&](EmbeddingResult&&) { called = true; }),
                  std::invalid_argument);
  CHECK_FALSE(called);
  CHECK(server.request_count() == 0);
}

TEST_CASE("client embed: Ollama /api/embed, batched, float rows in order", "[embeddings][client]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) {
    if (req.path != "/api/embed") return Reply{Reply::Action::kRespond, 404};
    return ollama_answer(inputs_of(req.body));
  });
  config::OllamaConfig cfg;
  cfg.base_url = server.url("");
  cfg.model = "nomic-embed-text";
  cfg.max_retries = 0;
  cfg.timeout = 10;
  Client client(cfg);
  const std::vector<std::string> texts = numbered_texts(5);
  const EmbeddingResult r = embed_bounded(client, embed_call(texts, 2));
  REQUIRE(r.success);
  CHECK(r.rows == 5);
  CHECK(r.dims == 4);
  for (std::size_t i = 0; i < texts.size(); ++i) CHECK(row(r, i) == vector_for(texts[i]));
  CHECK(r.prompt_tokens == 5);
  CHECK(r.model == "nomic");
  CHECK(r.provider == "ollama");
  const auto q = server.requests();
  REQUIRE(q.size() == 3);
  for (const auto& req : q) {
    CHECK(req.path == "/api/embed");
    CHECK(req.body.find(R"("model":"nomic-embed-text")") != std::string::npos);
    CHECK(req.body.find("encoding_format") == std::string::npos);
  }
}

TEST_CASE("client embed: cancel of every returned id ends the call with cancelled", "[embeddings][client][cancel]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) {
    Reply r = openai_answer(inputs_of(req.body));
    r.delay_ms = 30000;  // never answers in time; cut short when the server stops
    return r;
  });
  Client client(vllm_for(server, 3));
  auto p = std::make_shared<std::promise<EmbeddingResult>>();
  auto f = p->get_future();
  const auto ids = client.start_embed(embed_call(numbered_texts(7), 3), [p](EmbeddingResult&& r) {
    p->set_value(std::move(r));
  });
  REQUIRE(ids.size() == 3);
  // Let the requests leave, so the cancel aborts transfers in flight.
  for (int i = 0; i < 1000 && server.request_count() < 3; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  for (auto id : ids) client.cancel(id);
  REQUIRE(f.wait_for(kBound) == std::future_status::ready);
  const EmbeddingResult r = f.get();
  CHECK_FALSE(r.success);
  CHECK(r.error == "cancelled");
  CHECK_FALSE(r.retryable);
  CHECK(r.vectors.empty());
  CHECK(r.rows == 0);
  CHECK(server.request_count() == 3);  // cancelled, not retried
}

TEST_CASE("client embed: cancel right after start, before anything is sent", "[embeddings][client][cancel]") {
  TestHttpServer server;
  server.set_handler([](const ReceivedRequest& req) {
    Reply r = openai_answer(inputs_of(req.body));
    r.delay_ms = 30000;
    return r;
  });
  Client client(vllm_for(server, 3));
  auto p = std::make_shared<std::promise<EmbeddingResult>>();
  auto f = p->get_future();
  const auto ids =
      client.start_embed(embed_call(numbered_texts(4), 1), [p](EmbeddingResult&& r) { p->set_value(std::move(r)); });
  REQUIRE(ids.size() == 4);
  for (auto id : ids) client.cancel(id);
  REQUIRE(f.wait_for(kBound) == std::future_status::ready);
  const EmbeddingResult r = f.get();
  CHECK(r.error == "cancelled");
  CHECK(r.vectors.empty());
}

TEST_CASE("client embed: on a closed client the result is cancelled", "[embeddings][client][cancel]") {
  TestHttpServer server;
  Client client(vllm_for(server));
  client.close();
  const EmbeddingResult r = embed_bounded(client, embed_call(numbered_texts(3), 2));
  CHECK_FALSE(r.success);
  CHECK(r.error == "cancelled");
  CHECK(server.request_count() == 0);
}
