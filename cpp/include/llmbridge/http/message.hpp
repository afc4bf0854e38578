// Plain HTTP request/response values shared by the engine and the providers.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace llmbridge::http {

struct Header {
  std::string name;   // as sent; in a Response always lower-case
  std::string value;
};

// Seconds (as configs and callers give them) to the milliseconds libcurl takes: the one
// conversion. Rounded to the nearest millisecond, at least 1, saturating; a value that
// is not a finite number > 0 gives `fallback`.
long seconds_to_ms(double seconds, long fallback) noexcept;

// What a body-chunk consumer wants next.
enum class ChunkAction { kContinue, kPause, kAbort };

struct Request {
  std::string method = "POST";  // "GET" or "POST"
  std::string url;
  std::vector<Header> headers;  // Content-Type etc.; the engine adds an empty Expect:
  std::string body;
  long connect_timeout_ms = 10000;
  long timeout_ms = 60000;  // total time for this one HTTP try
  std::size_t max_response_bytes = std::size_t(64) << 20;
  // How many times this request may be sent. libcurl re-sends a request by itself when
  // a reused keep-alive connection dies before any answer; each send counts, and a
  // re-send beyond this limit is refused (the try fails with kConnect). 0 = no limit.
  int max_sends = 0;
  // Streaming (SSE, NDJSON): when set, the body of a final 2xx response is handed to
  // this function piece by piece as it arrives (pieces are as libcurl reads them, cut
  // anywhere) and Response::body stays empty. Any other status keeps its body in
  // Response::body as usual (an error reply is ordinary JSON, protocols.md §2.2), and
  // max_response_bytes applies to that body only: the consumer bounds its own memory
  // (http::SseParser bounds one event). Runs on the engine's I/O thread, like the
  // completion callback, and must be as quick. kPause: the piece was taken, and the
  // transfer stops reading until Engine::resume(). kAbort, or a throw, aborts the
  // transfer: it completes with kCancelled and a message saying the chunk callback
  // stopped it. Destroyed before the completion callback runs.
  std::function<ChunkAction(std::string_view)> on_body_chunk;
};

// Transport-level outcome. HTTP statuses >= 400 are NOT errors here: they come back
// as kNone with `status` set; classifying them is the providers' job.
enum class TransportError {
  kNone,
  kTimeout,    // connect or total timeout expired
  kConnect,    // could not connect, connection reset/refused, DNS failure
  kTooLarge,   // response body exceeded max_response_bytes
  kCancelled,  // cancelled by the caller or by engine shutdown
  kTls,        // certificate / TLS failure
  kOther,      // any other libcurl error (message says which)
};

const char* to_string(TransportError e) noexcept;

struct Response {
  TransportError error = TransportError::kNone;
  std::string error_message;  // human text for error != kNone; never holds request headers
  long status = 0;            // HTTP status, 0 when no response was received
  std::string body;
  std::vector<Header> headers;  // names lower-cased, in arrival order
  double elapsed_ms = 0.0;
  int sends = 0;  // times the request went out (libcurl's own re-sends included)

  // First header with this lower-case name.
  std::optional<std::string_view> header(std::string_view lower_name) const noexcept {
    for (const auto& h : headers)
      if (h.name == lower_name) return std::string_view(h.value);
    return std::nullopt;
  }
};

}  // namespace llmbridge::http
