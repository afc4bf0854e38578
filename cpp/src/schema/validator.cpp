// First cut of the validator: type, properties, required, enum, walking simdjson's DOM.
#include "llmbridge/schema/validator.hpp"

#include <simdjson.h>

#include <atomic>
#include <mutex>
#include <stdexcept>
#include <unordered_map>

#include "llmbridge/text/utf8.hpp"

namespace llmbridge::schema {

struct CompiledSchema {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  std::vector<std::string> unsupported;
  mutable std::atomic<bool> reported{false};
};

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

const char* type_name(element e) {
  switch (e.type()) {
    case element_type::ARRAY: return "array";
    case element_type::OBJECT: return "object";
    case element_type::INT64:
    case element_type::UINT64: return "integer";
    case element_type::DOUBLE: return "number";
    case element_type::STRING: return "string";
    case element_type::BOOL: return "boolean";
    case element_type::NULL_VALUE: return "null";
  }
  return "?";
}

bool has_type(element e, std::string_view t) {
  std::string_view n = type_name(e);
  if (t == n) return true;
  if (t == "number") return n == "integer" || n == "number";
  if (t == "integer" && n == "number") {
    double d = double(e);
    return d == double(static_cast<long long>(d));
  }
  return false;
}

std::string escape_token(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '~') out += "~0";
    else if (c == '/') out += "~1";
    else out += c;
  }
  return out;
}

void check(element schema, element inst, const std::string& ptr, std::vector<SchemaError>& out,
           std::size_t max) {
  if (out.size() >= max) return;
  if (schema.is_bool()) {
    if (!bool(schema)) out.push_back({ptr, "no value is allowed here"});
    return;
  }
  if (!schema.is_object()) return;
  simdjson::dom::object obj = schema;
  element t;
  if (!obj["type"].get(t)) {
    bool ok = false;
    std::string want;
    if (t.is_string()) {
      ok = has_type(inst, std::string_view(t));
      want = std::string(std::string_view(t));
    } else if (t.is_array()) {
      for (element x : simdjson::dom::array(t)) {
        if (x.is_string() && has_type(inst, std::string_view(x))) ok = true;
        if (!want.empty()) want += " or ";
        want += std::string(std::string_view(x));
      }
    }
    if (!ok) {
      out.push_back({ptr, "expected " + want + ", got " + type_name(inst)});
      return;
    }
  }
  element e;
  if (!obj["enum"].get(e) && e.is_array()) {
    std::string mine = simdjson::minify(inst);
    bool found = false;
    for (element x : simdjson::dom::array(e))
      if (simdjson::minify(x) == mine) found = true;
    if (!found && out.size() < max) out.push_back({ptr, "value is not one of enum's values"});
  }
  if (inst.is_object()) {
    simdjson::dom::object io = inst;
    element req;
    if (!obj["required"].get(req) && req.is_array()) {
      for (element r : simdjson::dom::array(req)) {
        std::string_view name = r;
        element tmp;
        if (io[name].get(tmp) && out.size() < max)
          out.push_back({ptr, "missing required property \"" + text::utf8_excerpt(name, 60) + "\""});
      }
    }
    element props;
    if (!obj["properties"].get(props) && props.is_object()) {
      for (auto field : io) {
        element sub;
        if (!simdjson::dom::object(props)[field.key].get(sub))
          check(sub, field.value, ptr + "/" + escape_token(field.key), out, max);
      }
    }
  }
}

}  // namespace

Schema::Schema() : impl_(std::make_unique<CompiledSchema>()) {}
Schema::~Schema() = default;

std::shared_ptr<const Schema> Schema::compile(std::string_view schema_json) {
  std::shared_ptr<Schema> s(new Schema());
  auto err = s->impl_->parser.parse(schema_json.data(), schema_json.size()).get(s->impl_->root);
  if (err) throw std::invalid_argument(std::string("schema is not JSON: ") + simdjson::error_message(err));
  if (!s->impl_->root.is_object() && !s->impl_->root.is_bool())
    throw std::invalid_argument("schema must be an object or a boolean");
  return s;
}

const std::vector<std::string>& Schema::unsupported() const noexcept { return impl_->unsupported; }

bool Schema::claim_unsupported_report() const noexcept { return !impl_->reported.exchange(true); }

std::vector<SchemaError> Schema::validate(std::string_view instance_json, std::size_t max_errors) const {
  simdjson::dom::parser p;
  element inst;
  auto err = p.parse(instance_json.data(), instance_json.size()).get(inst);
  if (err) throw std::invalid_argument(std::string("instance is not JSON: ") + simdjson::error_message(err));
  std::vector<SchemaError> out;
  if (max_errors == 0) return out;
  check(impl_->root, inst, "", out, max_errors);
  return out;
}

std::shared_ptr<const Schema> compile_cached(std::string_view schema_json) {
  static std::mutex mu;
  static std::unordered_map<std::string, std::shared_ptr<const Schema>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find(std::string(schema_json));
    if (it != cache.end()) return it->second;
  }
  auto s = Schema::compile(schema_json);
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 256) cache.clear();
  cache.emplace(std::string(schema_json), s);
  return s;
}

std::string mismatch_error(const std::vector<SchemaError>& errors) {
  if (errors.empty()) return "schema_mismatch";
  const SchemaError& e = errors.front();
  return "schema_mismatch: " + (e.pointer.empty() ? std::string("(root)") : e.pointer) + ": " + e.message;
}

}  // namespace llmbridge::schema
