// Error strings and classification shared by every provider.
#include "strings.hpp"
#include "llmbridge/llm/errors.hpp"

#include <simdjson.h>

namespace llmbridge::llm {
namespace {

using detail::is_space;
using detail::trim;

// Cuts at most `limit` bytes without splitting a UTF-8 sequence.
std::string clip(std::string_view s, std::size_t limit) {
  if (s.size() <= limit) return std::string(s);
  std::size_t n = limit;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return std::string(s.substr(0, n)) + "...";
}

std::string string_or_empty(simdjson::dom::element v) {
  std::string_view s;
  if (v.get(s) == simdjson::SUCCESS) return std::string(trim(s));
  return {};
}

std::string string_or_empty(simdjson::simdjson_result<simdjson::dom::element> v) {
  simdjson::dom::element e;
  if (v.get(e) != simdjson::SUCCESS) return {};
  return string_or_empty(e);
}

}  // namespace

std::string http_error(int status) { return "http_" + std::to_string(status); }

std::string connection_error(std::string_view details) {
  std::string out(kConnectionErrorPrefix);
  out.append(details);
  return out;
}

std::string invalid_json_error(std::string_view details) {
  std::string out(kInvalidJsonPrefix);
  out.append(details);
  return out;
}

bool is_retryable_status(int status) noexcept {
  return status == 408 || status == 409 || status == 425 || status == 429 || status >= 500;
}

bool is_auth_refused_status(int status) noexcept { return status == 401 || status == 403; }

ErrorClass classify_transport_error(http::TransportError error, std::string_view message,
                                    std::size_t max_response_bytes) {
  using http::TransportError;
  auto details = [&](std::string_view fallback) {
    std::string_view m = trim(message);
    return connection_error(m.empty() ? fallback : m);
  };
  switch (error) {
    case TransportError::kNone:  // not a transport failure; callers check first
    case TransportError::kOther: return {details("transport error"), true};
    case TransportError::kTimeout: return {std::string(kErrorTimeout), true};
    case TransportError::kConnect: return {details("could not connect"), true};
    case TransportError::kCancelled: return {std::string(kErrorCancelled), false};
    case TransportError::kTooLarge:
      return {connection_error("response body exceeds " + std::to_string(max_response_bytes) + " bytes"),
              false};
    case TransportError::kTls: return {details("TLS handshake or certificate failure"), false};
  }
  return {details("transport error"), true};
}

std::string error_message_from_body(std::string_view body) {
  std::string_view raw = trim(body);
  if (raw.empty()) return {};
  simdjson::dom::parser parser;
  simdjson::padded_string padded(raw);
  simdjson::dom::element doc;
  simdjson::dom::object obj;
  if (parser.parse(padded).get(doc) != simdjson::SUCCESS || doc.get(obj) != simdjson::SUCCESS)
    return std::string(raw);

  simdjson::dom::element error;
  if (obj["error"].get(error) == simdjson::SUCCESS) {
    simdjson::dom::object error_obj;
    if (error.get(error_obj) == simdjson::SUCCESS) {
      if (auto m = string_or_empty(error_obj["message"]); !m.empty()) return m;
    } else if (auto m = string_or_empty(error); !m.empty()) {
      return m;
    }
  }
  if (auto m = string_or_empty(obj["message"]); !m.empty()) return m;
  simdjson::dom::element detail;
  if (obj["detail"].get(detail) == simdjson::SUCCESS) {
    if (auto m = string_or_empty(detail); !m.empty()) return m;
    simdjson::dom::array items;
    if (detail.get(items) == simdjson::SUCCESS) {
      std::string joined;
      for (simdjson::dom::element item : items) {
        std::string m = string_or_empty(item["msg"]);
        if (m.empty()) m = string_or_empty(item);
        if (m.empty()) continue;
        if (!joined.empty()) joined += "; ";
        joined += m;
      }
      if (!joined.empty()) return joined;
    }
  }
  return std::string(raw);
}

std::string describe(const Attempt& a) {
  std::string what;
  const std::string_view e = a.error;
  if (a.success) {
    what = "the call succeeded";
  } else if (a.auth_refused) {
    what = a.status_code == 403 ? "the server refused the API key or denied access (HTTP 403)"
                                : "the server refused the API key (HTTP " + std::to_string(a.status_code) + ")";
  } else if (e == kErrorTimeout) {
    what = "the request timed out";
  } else if (e == kErrorCancelled) {
    what = "the call was cancelled";
  } else if (e == kErrorEmptyModelResponse) {
    what = "the model returned an empty answer";
  } else if (e.substr(0, kConnectionErrorPrefix.size()) == kConnectionErrorPrefix) {
    what = "could not get a response from the server: " + std::string(e.substr(kConnectionErrorPrefix.size()));
  } else if (e.substr(0, kInvalidJsonPrefix.size()) == kInvalidJsonPrefix) {
    what = "the model's answer is not JSON even after repair: " + std::string(e.substr(kInvalidJsonPrefix.size()));
  } else if (e.substr(0, 17) == "schema_mismatch: ") {
    what = "the model's answer does not match the JSON schema: " + std::string(e.substr(17));
  } else if (e.substr(0, 5) == "http_") {
    what = "the server answered HTTP " + std::string(e.substr(5));
    std::string m = error_message_from_body(a.raw_response);
    if (!m.empty()) what += ": " + clip(m, 300);
  } else {
    what = e.empty() ? std::string("the call failed") : std::string(e);
  }
  std::string context;
  if (!a.provider.empty()) context += a.provider;
  if (!a.model.empty()) context += (context.empty() ? "" : ", ") + std::string("model ") + a.model;
  if (a.attempts > 0)
    context += (context.empty() ? "" : ", ") + std::to_string(a.attempts) + (a.attempts == 1 ? " try" : " tries");
  if (!a.request_id.empty()) context += (context.empty() ? "" : ", ") + std::string("request ") + a.request_id;
  if (!context.empty()) what += " (" + context + ")";
  return what;
}

}  // namespace llmbridge::llm
