// Embedding requests and responses (embeddings.hpp).
#include "llmbridge/llm/embeddings.hpp"

#include <simdjson.h>

#include <algorithm>
#include <cstring>

#include "llmbridge/llm/errors.hpp"
#include "llmbridge/llm/json_writer.hpp"
#include "llmbridge/text/base64.hpp"
#include "wire.hpp"

namespace llmbridge::llm {
namespace {

namespace dom = simdjson::dom;
using simdjson::SUCCESS;

static_assert(sizeof(float) == 4, "float32 embeddings need a 4-byte float");
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "base64 embeddings are little-endian float32: add a byte swap for this platform"
#endif

// One row from a float list; false when it is not a list of numbers.
bool read_float_row(dom::element e, std::vector<float>& out, std::size_t& count) {
  dom::array list;
  if (e.get(list) != SUCCESS) return false;
  count = 0;
  for (dom::element v : list) {
    double d = 0;
    if (v.get(d) != SUCCESS) {
      std::int64_t i = 0;
      if (v.get(i) != SUCCESS) return false;
      d = double(i);
    }
    out.push_back(static_cast<float>(d));
    ++count;
  }
  return true;
}

// One row from base64 float32.
bool read_base64_row(std::string_view b64, std::vector<float>& out, std::size_t& count, std::string& scratch) {
  scratch.clear();
  if (!text::base64_decode(b64, scratch) || scratch.size() % 4 != 0) return false;
  count = scratch.size() / 4;
  const std::size_t at = out.size();
  out.resize(at + count);
  std::memcpy(out.data() + at, scratch.data(), scratch.size());
  return true;
}

void fail_shape(EmbeddingResult& r, const std::string& why, const std::string& body) {
  detail::fail(r, invalid_json_error(why), body);
  r.vectors.clear();
  r.rows = r.dims = 0;
}

}  // namespace

std::string embedding_dimension_error(int expected, std::size_t got) {
  return "embedding_dimension_mismatch: expected " + std::to_string(expected) + ", got " + std::to_string(got);
}

http::Request build_embed_request(const ProviderSpec& spec, const config::ProviderConfig& config,
                                  std::string_view model, const std::vector<std::string>& texts,
                                  std::size_t begin, std::size_t end, int dimensions,
                                  std::string_view request_id, std::string_view messages_json) {
  http::Request req = detail::base_request(config, spec.embeddings_path, request_id);
  JsonWriter w;
  w.begin_object();
  if (!model.empty() || spec.dialect == Dialect::kOllama) w.key("model").value(model);
  if (!messages_json.empty()) {
    w.key("messages").raw(messages_json);
  } else {
    w.key("input").begin_array();
    for (std::size_t i = begin; i < end && i < texts.size(); ++i) w.value(texts[i]);
    w.end_array();
  }
  if (spec.dialect == Dialect::kOpenAI) w.key("encoding_format").value("base64");
  if (dimensions > 0) w.key("dimensions").value(dimensions);
  w.end_object();
  req.body = w.take();
  return req;
}

EmbeddingResult parse_embed_response(const ProviderSpec& spec, const http::Response& response,
                                     std::string_view model, std::size_t expected_rows,
                                     std::size_t max_response_bytes) {
  EmbeddingResult r;
  static_cast<Attempt&>(r) = detail::start_attempt(response, spec.name, model);
  if (detail::classify_non_success(response, max_response_bytes, r)) return r;
  thread_local dom::parser parser;
  dom::object body;
  if (!detail::parse_body(parser, response.body, body, r)) return r;
  if (std::string m = detail::string_field(body["model"]); !m.empty()) r.model = std::move(m);

  std::size_t dims = 0;
  bool first = true;
  auto take_row = [&](std::size_t count) {
    if (first) {
      dims = count;
      first = false;
      return true;
    }
    return count == dims;
  };
  std::string scratch;
  if (spec.dialect == Dialect::kOllama) {
    r.prompt_tokens = detail::token_count(body["prompt_eval_count"]);
    dom::array rows;
    if (body["embeddings"].get(rows) != SUCCESS) {
      fail_shape(r, "no 'embeddings' list in the answer", response.body);
      return r;
    }
    for (dom::element row : rows) {
      std::size_t count = 0;
      if (!read_float_row(row, r.vectors, count)) {
        fail_shape(r, "an embedding is not a list of numbers", response.body);
        return r;
      }
      if (!take_row(count)) {
        fail_shape(r, "the embeddings have different lengths", response.body);
        return r;
      }
      ++r.rows;
    }
  } else {
    dom::object usage;
    if (body["usage"].get(usage) == SUCCESS) r.prompt_tokens = detail::token_count(usage["prompt_tokens"]);
    dom::array data;
    if (body["data"].get(data) != SUCCESS) {
      fail_shape(r, "no 'data' list in the answer", response.body);
      return r;
    }
    // Sorted by index (protocols.md §1.3: do not trust the array order).
    std::vector<std::pair<std::int64_t, dom::element>> items;
    for (dom::element item : data) {
      std::int64_t index = static_cast<std::int64_t>(items.size());
      if (item["index"].get(index) != SUCCESS) index = static_cast<std::int64_t>(items.size());
      items.emplace_back(index, item);
    }
    std::stable_sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    for (std::size_t i = 0; i < items.size(); ++i) {
      if (items[i].first != static_cast<std::int64_t>(i)) {
        fail_shape(r, "the embeddings' indexes are not 0.." + std::to_string(items.size() - 1), response.body);
        return r;
      }
      // get(), not the throwing conversion: an item that is not an object or has no
      // `embedding` must fail the batch (this runs on the engine's I/O thread).
      dom::element e;
      std::size_t count = 0;
      std::string_view b64;
      bool ok = items[i].second["embedding"].get(e) == SUCCESS &&
                (e.get(b64) == SUCCESS ? read_base64_row(b64, r.vectors, count, scratch)
                                       : read_float_row(e, r.vectors, count));
      if (!ok) {
        fail_shape(r, "an embedding is neither base64 float32 nor a list of numbers", response.body);
        return r;
      }
      if (!take_row(count)) {
        fail_shape(r, "the embeddings have different lengths", response.body);
        return r;
      }
      ++r.rows;
    }
  }
  if (r.rows != expected_rows) {
    fail_shape(r, std::to_string(expected_rows) + " embeddings asked for, " + std::to_string(r.rows) + " received",
               response.body);
    return r;
  }
  r.dims = dims;
  r.success = true;
  r.retryable = false;
  r.error.clear();
  return r;
}

}  // namespace llmbridge::llm
