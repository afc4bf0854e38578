// The public face of the validator: Schema, the compile cache, the mismatch string.
#include "llmbridge/schema/validator.hpp"

#include <list>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "compiled.hpp"
#include "llmbridge/text/json_parse.hpp"

namespace llmbridge::schema {

Schema::Schema() : impl_(std::make_unique<CompiledSchema>()) {}
Schema::~Schema() = default;

std::shared_ptr<const Schema> Schema::compile(std::string_view schema_json) {
  std::shared_ptr<Schema> s(new Schema());
  detail::compile_schema(schema_json, *s->impl_);
  return s;
}

const std::vector<std::string>& Schema::unsupported() const noexcept { return impl_->unsupported; }

bool Schema::claim_unsupported_report() const noexcept { return !impl_->reported.exchange(true); }

std::vector<SchemaError> Schema::validate(std::string_view instance_json, std::size_t max_errors) const {
  // Its own parser, not text::thread_parser(): a caller may hold a document parsed there.
  thread_local text::JsonParser parser;
  thread_local detail::OwnedTape fallback;
  simdjson::dom::element root;
  const simdjson::error_code err = parser.parse(instance_json, root);
  if (!err) {
    const simdjson::dom::document& doc = parser.document();
    return detail::validate_tape(*impl_, detail::Tape(doc.tape.get(), doc.string_buf.get(), nullptr), max_errors);
  }
  if (!detail::fallback_may_help(err))
    throw std::invalid_argument(std::string("instance is not valid JSON: ") + simdjson::error_message(err));
  const std::string why = detail::parse_fallback(instance_json, fallback);
  if (!why.empty()) throw std::invalid_argument("instance is not valid JSON: " + why);
  return detail::validate_tape(*impl_, fallback.view(), max_errors);
}

std::vector<SchemaError> Schema::validate(const Instance& instance, std::size_t max_errors) const {
  if (!instance.complete()) throw std::invalid_argument("instance is not one complete JSON value");
  return detail::validate_tape(
      *impl_, detail::Tape(instance.words_.data(), reinterpret_cast<const std::uint8_t*>(instance.strings_.data()), &instance.bigs_), max_errors);
}

namespace {

// Least recently used first out, keyed by the schema text.
class SchemaCache {
 public:
  static constexpr std::size_t kCapacity = 256;

  std::shared_ptr<const Schema> get(std::string_view text) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = index_.find(text);
      if (it != index_.end()) {
        order_.splice(order_.begin(), order_, it->second);
        return it->second->second;
      }
    }
    // Compiled outside the lock: a slow schema does not hold up the others. Two threads
    // may compile the same text at once; the first one in is kept.
    std::shared_ptr<const Schema> compiled = Schema::compile(text);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = index_.find(text);
    if (it != index_.end()) return it->second->second;
    order_.emplace_front(std::string(text), compiled);
    index_.emplace(order_.front().first, order_.begin());
    if (order_.size() > kCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    return compiled;
  }

 private:
  using Entry = std::pair<std::string, std::shared_ptr<const Schema>>;
  std::mutex mu_;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string_view, std::list<Entry>::iterator> index_;  // keys view order_'s strings
};

}  // namespace

std::shared_ptr<const Schema> compile_cached(std::string_view schema_json) {
  static SchemaCache* cache = new SchemaCache();  // never destroyed: usable during exit
  return cache->get(schema_json);
}

std::string mismatch_error(const std::vector<SchemaError>& errors) {
  if (errors.empty()) return "schema_mismatch";
  const SchemaError& e = errors.front();
  return "schema_mismatch: " + (e.pointer.empty() ? std::string("(root)") : e.pointer) + ": " + e.message;
}

}  // namespace llmbridge::schema
