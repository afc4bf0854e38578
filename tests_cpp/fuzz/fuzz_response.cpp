// libFuzzer target for the provider response parsers (llm/provider.hpp): whatever the
// server sends, a response maps to exactly one outcome, success with valid JSON data
// or a contract error string, and an auth refusal never quotes the server's body.
//
// Input layout, chosen so seeds stay readable text:
//   byte 0  provider: 'o' Ollama native, 'l' Ollama's OpenAI layer, 'v' vLLM, else OpenAI
//   byte 1  status, by (byte % 16): '0' 200, '1' 200, '2' 201, '3' 204, '4' 400, '5' 401,
//           '6' 403, '7' 404, '8' 429, '9' 500, ':' 503, ';' 302, '<' no response,
//           '=' 408, '>' timeout, '?' connection reset
//   byte 2  headers, by (byte % 8): bit 0 x-request-id, bit 1 retry-after,
//           bit 2 retry-after-ms; each value is the next line of the input
//   rest    the body
#include <cctype>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llmbridge/http/message.hpp"
#include "llmbridge/llm/content.hpp"
#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/provider.hpp"
#include "llmbridge/text/repair.hpp"
#include "llmbridge/text/utf8.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using namespace llmbridge;

namespace {

struct Status {
  long status;
  http::TransportError error;
};

constexpr Status kStatuses[16] = {
    {200, http::TransportError::kNone}, {200, http::TransportError::kNone}, {201, http::TransportError::kNone},
    {204, http::TransportError::kNone}, {400, http::TransportError::kNone}, {401, http::TransportError::kNone},
    {403, http::TransportError::kNone}, {404, http::TransportError::kNone}, {429, http::TransportError::kNone},
    {500, http::TransportError::kNone}, {503, http::TransportError::kNone}, {302, http::TransportError::kNone},
    {0, http::TransportError::kNone},   {408, http::TransportError::kNone}, {0, http::TransportError::kTimeout},
    {0, http::TransportError::kConnect},
};

std::string_view next_line(std::string_view& rest) {
  const std::size_t nl = rest.find('\n');
  const std::string_view line = rest.substr(0, nl);
  rest.remove_prefix(nl == std::string_view::npos ? rest.size() : nl + 1);
  return line;
}

bool is_contract_error(std::string_view e) {
  auto starts = [&](std::string_view p) { return e.substr(0, p.size()) == p; };
  if (e == llm::kErrorTimeout || e == llm::kErrorCancelled || e == llm::kErrorEmptyModelResponse) return true;
  if (starts(llm::kConnectionErrorPrefix) || starts(llm::kInvalidJsonPrefix)) return true;
  if (!starts("http_") || e.size() == 5) return false;
  for (char c : e.substr(5))
    if (c < '0' || c > '9') return false;
  return true;
}

// A key-shaped token ("sk-" and 16 more key characters) in `s`, or "".
std::string_view key_like_token(std::string_view s) {
  for (std::size_t p = s.find("sk-"); p != std::string_view::npos; p = s.find("sk-", p + 1)) {
    std::size_t end = p + 3;
    while (end < s.size() && (std::isalnum(static_cast<unsigned char>(s[end])) || s[end] == '-' || s[end] == '_'))
      ++end;
    if (end - p >= 19) return s.substr(p, end - p);
  }
  return {};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 3) return 0;
  std::string_view rest(reinterpret_cast<const char*>(data) + 3, size - 3);
  const char provider_byte = char(data[0]);
  const Status st = kStatuses[data[1] % 16];

  http::Response response;
  response.status = st.status;
  response.error = st.error;
  if (st.error != http::TransportError::kNone) response.error_message = "fuzz transport failure";
  response.elapsed_ms = 12.5;
  std::string header_values;
  if (data[2] & 1) response.headers.push_back({"x-request-id", std::string(next_line(rest))});
  if (data[2] & 2) response.headers.push_back({"retry-after", std::string(next_line(rest))});
  if (data[2] & 4) response.headers.push_back({"retry-after-ms", std::string(next_line(rest))});
  for (const auto& h : response.headers) header_values += h.value + "\n";
  response.body = std::string(rest);

  llm::Attempt a;
  if (provider_byte == 'o') a = llm::parse_ollama_response(response, "fuzz-model");
  else if (provider_byte == 'l') a = llm::parse_openai_response(response, llm::kProviderOllama, "fuzz-model");
  else if (provider_byte == 'v') a = llm::parse_openai_response(response, llm::kProviderVLLM, "fuzz-model");
  else a = llm::parse_openai_response(response, llm::kProviderOpenAI, "fuzz-model");

  const std::string sentence = llm::describe(a);
  auto why = [&] {
    return "provider=" + std::string(1, provider_byte) + " status=" + std::to_string(st.status) +
           " transport=" + http::to_string(st.error) + "\nheaders: " + show(header_values) +
           "\nbody:    " + show(response.body) + "\nsuccess=" + std::to_string(a.success) +
           " retryable=" + std::to_string(a.retryable) + " truncated=" + std::to_string(a.truncated) +
           "\nerror:   " + show(a.error) + "\ndata:    " + show(a.data_json) + "\nraw:     " + show(a.raw_response) +
           "\ndescribe: " + show(sentence);
  };

  // Exactly one outcome.
  if (a.success) {
    check(a.error.empty() && !a.data_json.empty() && !a.retryable, "success_is_clean", why);
    check(st.error == http::TransportError::kNone && st.status >= 200 && st.status < 300, "success_only_on_2xx",
          why);
    check(text::is_valid_json(a.data_json) && llmbridge::fuzz::strict_json_depth(a.data_json).has_value(),
          "success_data_is_valid_json", why);
    // The data is what process_content makes of the model's text, kept in raw_response
    // (with invalid UTF-8 in the body already replaced, which counts as a repair).
    const llm::ContentResult c = llm::process_content(a.raw_response);
    const bool replaced = !text::is_valid_utf8(response.body);
    check(c.ok && c.json == a.data_json && (c.repaired || replaced) == a.repaired,
          "success_data_from_content", why);
  } else {
    check(!a.error.empty() && a.data_json.empty(), "failure_has_error_and_no_data", why);
    check(is_contract_error(a.error), "failure_error_is_a_contract_string", why);
  }

  // Fields every outcome fills.
  check(a.attempts == 1 && a.status_code == int(st.status), "attempt_fields_filled", why);
  check(a.retry_after_s == -1 || (std::isfinite(a.retry_after_s) && a.retry_after_s > 0), "retry_after_sane", why);
  check(a.prompt_tokens >= -1 && a.completion_tokens >= -1, "token_counts_sane", why);
  check(a.auth_refused == (st.error == http::TransportError::kNone && (st.status == 401 || st.status == 403)),
        "auth_refused_only_on_401_403", why);
  if (st.error == http::TransportError::kNone && (st.status < 200 || st.status >= 300) && st.status != 0)
    check(a.raw_response == response.body && a.error == llm::http_error(int(st.status)), "http_error_keeps_body",
          why);

  // Secrets: some servers quote the key they were sent in a 401/403 body.
  if (a.auth_refused) {
    const std::string_view key = key_like_token(response.body);
    if (!key.empty() && header_values.find(key) == std::string::npos)
      check(sentence.find(key) == std::string::npos, "auth_refusal_does_not_quote_body", why);
  }
  (void)llm::error_message_from_body(response.body);
  return 0;
}
