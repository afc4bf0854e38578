// The re-ask after a schema mismatch, without a network: the conversation a chat call
// (call_llm's system/user prompts or its messages, chat()'s messages) continues with, and
// the prompt a completion gets, as exact request bodies.
#include <catch2/catch.hpp>

#include <random>
#include <simdjson.h>
#include <stdexcept>
#include <string>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/llm/provider_table.hpp"
#include "llmbridge/llm/schema_check.hpp"

using namespace llmbridge;
using namespace llmbridge::llm;

namespace {

const char* kSchema = R"({"type":"object","required":["a"]})";
const char* kTail = R"({"role":"assistant","content":"{\"b\": 1}"},{"role":"user","content":"fix \"it\"\n/a"})";

std::string messages_of(const http::Request& r) {
  const auto begin = r.body.find("\"messages\":") + 11;
  const auto end = r.body.find(",\"max_tokens\"");
  return r.body.substr(begin, end - begin);
}

}  // namespace

TEST_CASE("reask: appended messages, escaped, with or without earlier messages", "[schema][reask]") {
  CHECK(append_reask_messages(R"([{"role":"user","content":"x"}])", "{\"b\": 1}", "fix \"it\"\n/a") ==
        std::string(R"([{"role":"user","content":"x"},)") + kTail + "]");
  CHECK(append_reask_messages(" [ ]\n", "{\"b\": 1}", "fix \"it\"\n/a") == std::string("[ ") + kTail + "]");
  CHECK_THROWS_AS(append_reask_messages("{}", "a", "b"), std::invalid_argument);
}

TEST_CASE("reask: call_llm's system and user prompts become messages, the document rendered in", "[schema][reask]") {
  ChatCall call;
  call.prompts.system = "sys";
  call.prompts.user = "Read: {document_text}";
  call.document_text = "doc";
  call.schema_json = kSchema;
  call.schema_name = "person";
  const ChatCall again = reask_call(call, "{\"b\": 1}", "fix \"it\"\n/a");
  CHECK(again.prompts.messages_json ==
        std::string(R"([{"role":"system","content":"sys"},{"role":"user","content":"Read: doc"},)") + kTail + "]");
  CHECK(again.document_text.empty());
  CHECK(again.schema_json == kSchema);
  CHECK(again.schema_name == "person");

  // The body is the first request's, with the two messages added: same schema, same fields.
  config::VLLMConfig c;
  c.model = "m";
  const http::Request first = build_openai_request(c, call, "r");
  const http::Request second = build_openai_request(c, again, "r");
  const std::string first_messages = messages_of(first);
  CHECK(messages_of(second) == first_messages.substr(0, first_messages.size() - 1) + "," + kTail + "]");
  CHECK(second.body.substr(second.body.find(",\"max_tokens\"")) == first.body.substr(first.body.find(",\"max_tokens\"")));

  SECTION("no system prompt: no system message") {
    call.prompts.system.clear();
    CHECK(reask_call(call, "{\"b\": 1}", "fix \"it\"\n/a").prompts.messages_json ==
          std::string(R"([{"role":"user","content":"Read: doc"},)") + kTail + "]");
  }
  SECTION("messages given: kept as they are, the two appended") {
    call.prompts.messages_json = R"([{"role":"user","content":"m1"}])";
    CHECK(reask_call(call, "{\"b\": 1}", "fix \"it\"\n/a").prompts.messages_json ==
          std::string(R"([{"role":"user","content":"m1"},)") + kTail + "]");
  }
  SECTION("Ollama /api/chat: the same messages") {
    config::OllamaConfig o;
    const http::Request r = build_ollama_request(o, again, "r");
    CHECK(r.body.find(kTail) != std::string::npos);
    CHECK(r.body.find(std::string("\"format\":") + kSchema) != std::string::npos);
  }
}

TEST_CASE("reask: chat() appends to its messages, complete() to its prompt", "[schema][reask]") {
  GenerateCall chat;
  chat.op = Operation::kChat;
  chat.messages_json = R"([{"role":"user","content":"hi"}])";
  chat.options.json_schema = kSchema;
  chat.options.max_tokens = 7;
  const GenerateCall again = reask_call(chat, "{\"b\": 1}", "fix \"it\"\n/a");
  CHECK(again.messages_json == std::string(R"([{"role":"user","content":"hi"},)") + kTail + "]");
  CHECK(again.options.json_schema == kSchema);
  CHECK(again.options.max_tokens == 7);

  GenerateCall completion;
  completion.op = Operation::kCompletion;
  completion.prompt = "Give JSON.";
  completion.options.json_schema = kSchema;
  const GenerateCall prompt_again = reask_call(completion, "{\"b\": 1}", "fix it");
  CHECK(prompt_again.prompt == "Give JSON.\n\nfix it");
  CHECK(prompt_again.messages_json.empty());

  // Both still build for every provider (the Ollama chat goes through its image rewrite).
  config::OllamaConfig o;
  o.model = "m";
  RequestContext ctx{o, "m", 0, "", "r"};
  CHECK(build_generate_request(provider_spec("ollama"), ctx, again).body.find(kTail) != std::string::npos);
  CHECK(build_generate_request(provider_spec("ollama"), ctx, prompt_again).body.find("Give JSON.\\n\\nfix it") !=
        std::string::npos);
}

TEST_CASE("reask: any answer and message text gives a JSON array that ends with them, verbatim", "[schema][reask]") {
  // Quotes, backslashes, control characters, multi-byte UTF-8 and JSON look-alikes.
  const std::vector<std::string> pieces = {"\"", "\\", "\n", "\t", std::string(1, '\0'), "\x01", "\x1f", "]", "}",
                                           ",", "{\"role\":", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "a", " ", "/"};
  std::mt19937 rng(12345);
  auto random_text = [&] {
    std::string out;
    const int n = int(rng() % 12);
    for (int i = 0; i < n; ++i) out += pieces[rng() % pieces.size()];
    return out;
  };
  simdjson::dom::parser parser;
  for (int round = 0; round < 500; ++round) {
    const std::string answer = random_text(), reask = random_text();
    const std::string before = round % 3 == 0 ? "[]" : R"([{"role":"user","content":"q"}])";
    const std::string out = append_reask_messages(before, answer, reask);
    simdjson::dom::array array;
    REQUIRE(parser.parse(out).get(array) == simdjson::SUCCESS);
    const std::size_t n = array.size();
    REQUIRE(n == (round % 3 == 0 ? 2u : 3u));
    std::string_view role, content;
    REQUIRE(array.at(n - 2)["role"].get(role) == simdjson::SUCCESS);
    CHECK(role == "assistant");
    REQUIRE(array.at(n - 2)["content"].get(content) == simdjson::SUCCESS);
    CHECK(content == answer);
    REQUIRE(array.at(n - 1)["content"].get(content) == simdjson::SUCCESS);
    CHECK(content == reask);
  }
}

TEST_CASE("reask: the message lists each error as a pointer: message line", "[schema][reask]") {
  const std::vector<schema::SchemaError> errors = {{"/age", "expected integer, got string"},
                                                   {"", "missing required property \"name\""}};
  CHECK(reask_message(errors) ==
        "Your answer did not match the JSON schema:\n"
        "/age: expected integer, got string\n"
        "(root): missing required property \"name\"\n"
        "Reply again with only JSON that matches the schema.");
}

TEST_CASE("reask: check_schema fails only a successful answer that breaks the schema", "[schema][reask]") {
  auto s = schema::compile_cached(R"({"type":"object","properties":{"n":{"type":"integer"}},"required":["n"]})");
  Attempt ok;
  ok.success = true;
  ok.data_json = R"({"n": 1})";
  CHECK_FALSE(check_schema(*s, ok));
  CHECK(ok.success);

  Attempt bad = ok;
  bad.data_json = R"({"n": "1"})";
  bad.raw_response = "```json\n{\"n\": \"1\"}\n```";
  CHECK(check_schema(*s, bad));
  CHECK_FALSE(bad.success);
  CHECK(bad.retryable);
  CHECK(bad.error == "schema_mismatch: /n: " + bad.schema_errors.at(0).message);
  CHECK(bad.data_json == R"({"n": "1"})");  // kept
  CHECK(bad.raw_response == "```json\n{\"n\": \"1\"}\n```");
  CHECK(is_schema_mismatch(bad.error));
  CHECK_FALSE(is_schema_mismatch("invalid_json: x"));

  Attempt failed;  // an earlier failure is left alone
  failed.error = "http_500";
  failed.data_json = R"({"n": "1"})";
  CHECK_FALSE(check_schema(*s, failed));
  CHECK(failed.error == "http_500");
  CHECK(failed.schema_errors.empty());

  Attempt few = bad;  // max_errors caps the list
  few.success = true;
  few.error.clear();
  few.schema_errors.clear();
  few.data_json = R"({"m": 1})";
  CHECK(check_schema(*s, few, 1));
  CHECK(few.schema_errors.size() == 1);
}
