// The re-ask after a schema mismatch, without a network: the conversation a chat call
// (call_llm's system/user prompts or its messages, chat()'s messages) continues with, and
// the prompt a completion gets, as exact request bodies.
#include <catch2/catch.hpp>

#include <stdexcept>
#include <string>

#include "llmbridge/config/provider_config.hpp"
#include "llmbridge/llm/generation.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/llm/provider_table.hpp"

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
