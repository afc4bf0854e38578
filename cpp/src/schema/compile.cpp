// Schema text -> CompiledSchema: parse with simdjson, find every resource ($id) and
// anchor, compile each subschema once (memoised by its place in the document, so a
// recursive schema compiles in finite time), then resolve local $refs.
#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <unordered_map>

#include "compiled.hpp"
#include "llmbridge/text/json_parse.hpp"

namespace llmbridge::schema::detail {

namespace {

constexpr int kMaxSchemaDepth = 1000;

enum class Kw : std::uint8_t {
  unknown, type, properties, required, additional_properties, pattern_properties, property_names,
  min_properties, max_properties, dependent_required, dependent_schemas, dependencies, enum_, const_,
  items, prefix_items, additional_items, contains, min_contains, max_contains, min_items, max_items,
  unique_items, min_length, max_length, minimum, maximum, exclusive_minimum, exclusive_maximum,
  multiple_of, any_of, one_of, all_of, not_, if_, then_, else_, ref, defs, id, anchor, dynamic_anchor,
  pattern, dynamic_ref, recursive_ref, unevaluated_properties, unevaluated_items, content_schema, schema,
};

Kw keyword(std::string_view k) {
  static const std::unordered_map<std::string_view, Kw> table{
      {"type", Kw::type},
      {"properties", Kw::properties},
      {"required", Kw::required},
      {"additionalProperties", Kw::additional_properties},
      {"patternProperties", Kw::pattern_properties},
      {"propertyNames", Kw::property_names},
      {"minProperties", Kw::min_properties},
      {"maxProperties", Kw::max_properties},
      {"dependentRequired", Kw::dependent_required},
      {"dependentSchemas", Kw::dependent_schemas},
      {"dependencies", Kw::dependencies},
      {"enum", Kw::enum_},
      {"const", Kw::const_},
      {"items", Kw::items},
      {"prefixItems", Kw::prefix_items},
      {"additionalItems", Kw::additional_items},
      {"contains", Kw::contains},
      {"minContains", Kw::min_contains},
      {"maxContains", Kw::max_contains},
      {"minItems", Kw::min_items},
      {"maxItems", Kw::max_items},
      {"uniqueItems", Kw::unique_items},
      {"minLength", Kw::min_length},
      {"maxLength", Kw::max_length},
      {"minimum", Kw::minimum},
      {"maximum", Kw::maximum},
      {"exclusiveMinimum", Kw::exclusive_minimum},
      {"exclusiveMaximum", Kw::exclusive_maximum},
      {"multipleOf", Kw::multiple_of},
      {"anyOf", Kw::any_of},
      {"oneOf", Kw::one_of},
      {"allOf", Kw::all_of},
      {"not", Kw::not_},
      {"if", Kw::if_},
      {"then", Kw::then_},
      {"else", Kw::else_},
      {"$ref", Kw::ref},
      {"$defs", Kw::defs},
      {"definitions", Kw::defs},
      {"$id", Kw::id},
      {"$anchor", Kw::anchor},
      {"$dynamicAnchor", Kw::dynamic_anchor},
      {"pattern", Kw::pattern},
      {"$dynamicRef", Kw::dynamic_ref},
      {"$recursiveRef", Kw::recursive_ref},
      {"unevaluatedProperties", Kw::unevaluated_properties},
      {"unevaluatedItems", Kw::unevaluated_items},
      {"contentSchema", Kw::content_schema},
      {"$schema", Kw::schema},
  };
  auto it = table.find(k);
  return it == table.end() ? Kw::unknown : it->second;
}

// ---- JSON pointers and URIs ----

std::string child_pointer(const std::string& ptr, std::string_view token) {
  std::string out = ptr;
  out += '/';
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string child_pointer(const std::string& ptr, std::size_t index) { return ptr + "/" + std::to_string(index); }

std::string where(const std::string& ptr) {
  if (ptr.empty()) return "(root)";
  if (ptr.size() <= 200) return ptr;
  return ptr.substr(0, 197) + "...";
}

// A short, printable quotation of schema text for messages.
std::string excerpt(std::string_view s, std::size_t max = 60) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    if (i + len > s.size()) len = s.size() - i;
    std::string piece;
    if (c == '"' || c == '\\') {
      piece = std::string("\\") + char(c);
    } else if (c < 0x20) {
      piece = "\\u00";
      piece += "0123456789abcdef"[c >> 4];
      piece += "0123456789abcdef"[c & 15];
    } else {
      piece = std::string(s.substr(i, len));
    }
    if (out.size() + piece.size() > max - 5) {
      out += "...";
      break;
    }
    out += piece;
    i += len;
  }
  return out + "\"";
}

struct UriParts {
  std::string scheme;  // without ':'
  bool has_authority = false;
  std::string authority;
  std::string path;
  bool has_query = false;
  std::string query;
};

UriParts parse_uri(std::string_view s) {
  UriParts u;
  std::size_t i = 0;
  if (!s.empty() && std::isalpha(static_cast<unsigned char>(s[0]))) {
    std::size_t j = 1;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '+' || s[j] == '-' || s[j] == '.')) ++j;
    if (j < s.size() && s[j] == ':') {
      u.scheme = std::string(s.substr(0, j));
      i = j + 1;
    }
  }
  if (s.substr(i, 2) == "//") {
    u.has_authority = true;
    std::size_t j = i + 2;
    while (j < s.size() && s[j] != '/' && s[j] != '?') ++j;
    u.authority = std::string(s.substr(i + 2, j - i - 2));
    i = j;
  }
  std::size_t q = s.find('?', i);
  u.path = std::string(s.substr(i, q == std::string_view::npos ? std::string_view::npos : q - i));
  if (q != std::string_view::npos) {
    u.has_query = true;
    u.query = std::string(s.substr(q + 1));
  }
  return u;
}

std::string remove_dot_segments(std::string in) {
  std::string out;
  while (!in.empty()) {
    if (in.rfind("../", 0) == 0) {
      in.erase(0, 3);
    } else if (in.rfind("./", 0) == 0) {
      in.erase(0, 2);
    } else if (in.rfind("/./", 0) == 0) {
      in.replace(0, 3, "/");
    } else if (in == "/.") {
      in = "/";
    } else if (in.rfind("/../", 0) == 0 || in == "/..") {
      in = in == "/.." ? "/" : in.substr(3);
      const std::size_t cut = out.rfind('/');
      out.erase(cut == std::string::npos ? 0 : cut);
    } else if (in == "." || in == "..") {
      in.clear();
    } else {
      std::size_t next = in.find('/', in[0] == '/' ? 1 : 0);
      if (next == std::string::npos) next = in.size();
      out += in.substr(0, next);
      in.erase(0, next);
    }
  }
  return out;
}

std::string join_uri(const UriParts& u) {
  std::string out;
  if (!u.scheme.empty()) out += u.scheme + ":";
  if (u.has_authority) out += "//" + u.authority;
  out += u.path;
  if (u.has_query) out += "?" + u.query;
  return out;
}

// RFC 3986 section 5.2: `ref` against `base` (neither has a fragment).
std::string resolve_reference(const std::string& base, const std::string& ref) {
  const UriParts r = parse_uri(ref);
  if (!r.scheme.empty()) {
    UriParts t = r;
    t.path = remove_dot_segments(t.path);
    return join_uri(t);
  }
  const UriParts b = parse_uri(base);
  UriParts t;
  t.scheme = b.scheme;
  if (r.has_authority) {
    t.has_authority = true;
    t.authority = r.authority;
    t.path = remove_dot_segments(r.path);
    t.has_query = r.has_query;
    t.query = r.query;
    return join_uri(t);
  }
  t.has_authority = b.has_authority;
  t.authority = b.authority;
  if (r.path.empty()) {
    t.path = b.path;
    t.has_query = r.has_query || b.has_query;
    t.query = r.has_query ? r.query : b.query;
    return join_uri(t);
  }
  if (r.path[0] == '/') {
    t.path = remove_dot_segments(r.path);
  } else if (b.has_authority && b.path.empty()) {
    t.path = remove_dot_segments("/" + r.path);
  } else {
    const std::size_t cut = b.path.rfind('/');
    t.path = remove_dot_segments((cut == std::string::npos ? std::string() : b.path.substr(0, cut + 1)) + r.path);
  }
  t.has_query = r.has_query;
  t.query = r.query;
  return join_uri(t);
}

// Splits "uri#fragment" (the fragment without '#'); has_fragment tells "x#" from "x".
void split_fragment(const std::string& s, std::string& uri, std::string& fragment) {
  const std::size_t h = s.find('#');
  uri = s.substr(0, h);
  fragment = h == std::string::npos ? std::string() : s.substr(h + 1);
}

bool percent_decode(const std::string& in, std::string& out) {
  out.clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    auto hex = [](char c) {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    if (i + 2 >= in.size() + 0 || hex(in[i + 1]) < 0 || hex(in[i + 2]) < 0) return false;
    out += char(hex(in[i + 1]) * 16 + hex(in[i + 2]));
    i += 2;
  }
  return true;
}

const char* json_type(char t) {
  switch (t) {
    case '{': return "an object";
    case '[': return "an array";
    case '"': return "a string";
    case 't':
    case 'f': return "a boolean";
    case 'n': return "null";
    default: return "a number";
  }
}

// ---- the compiler ----

class Compiler {
 public:
  Compiler(CompiledSchema& out) : out_(out), t_(out.tape.view()) {}

  void run() {
    scan(Tape::kRoot, "", "", 0);
    if (!resources_.count("")) resources_[""] = Tape::kRoot;
    out_.root = compile(Tape::kRoot, "", "", 0);
    // Targets of $ref compile on demand and may hold more $refs: the list grows.
    for (std::size_t p = 0; p < pending_.size(); ++p) {
      const Pending ref = pending_[p];
      const std::int32_t target = resolve(ref);
      if (target >= 0) out_.nodes[std::size_t(ref.node)].ref = target;
      if (target >= 0) out_.nodes[std::size_t(ref.node)].applicators = true;
    }
    out_.unsupported.assign(unsupported_.begin(), unsupported_.end());
  }

 private:
  struct Location {
    std::string pointer;
    std::string base;
  };
  struct Pending {
    std::int32_t node;
    std::string ref;
    std::string base;
    std::string pointer;  // of the schema holding the $ref
  };

  CompiledSchema& out_;
  Tape t_;
  std::unordered_map<std::size_t, Location> locations_;  // by tape index
  std::map<std::string, std::size_t> resources_;         // absolute URI -> tape index
  std::map<std::string, std::size_t> anchors_;           // "uri#name" -> tape index
  std::unordered_map<std::size_t, std::int32_t> compiled_;
  std::vector<Pending> pending_;
  std::set<std::string> unsupported_;
  std::unordered_map<std::string, std::uint32_t> regex_ids_;

  [[noreturn]] static void fail(const std::string& ptr, const std::string& what) {
    throw std::invalid_argument("invalid schema at " + where(ptr) + ": " + what);
  }

  // The value of member `key` of the object at `i`, or 0.
  std::size_t member(std::size_t i, std::string_view key) const {
    for (std::size_t j = i + 1, end = t_.end_of(i) - 1; j < end; j = t_.next(j + 1))
      if (t_.string(j) == key) return j + 1;
    return 0;
  }

  template <typename F>
  void for_members(std::size_t i, F&& f) const {
    for (std::size_t j = i + 1, end = t_.end_of(i) - 1; j < end; j = t_.next(j + 1)) f(t_.string(j), j + 1);
  }
  template <typename F>
  void for_elements(std::size_t i, F&& f) const {
    std::size_t k = 0;
    for (std::size_t j = i + 1, end = t_.end_of(i) - 1; j < end; j = t_.next(j)) f(k++, j);
  }

  // The base URI in effect inside the object at `i`, given the one around it.
  std::string base_of(std::size_t i, const std::string& outer) const {
    const std::size_t id = member(i, "$id");
    if (!id || t_.type(id) != '"') return outer;
    std::string uri, fragment;
    split_fragment(resolve_reference(outer, std::string(t_.string(id))), uri, fragment);
    return uri;
  }

  // Finds the resources and anchors: walks every place that holds a subschema.
  void scan(std::size_t i, const std::string& ptr, const std::string& outer, int depth) {
    if (t_.type(i) != '{') return;
    if (depth > kMaxSchemaDepth) fail(ptr, "subschemas nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    const std::string base = base_of(i, outer);
    if (member(i, "$id")) resources_.emplace(base, i);
    locations_.emplace(i, Location{ptr, base});
    for (const char* a : {"$anchor", "$dynamicAnchor"}) {
      const std::size_t v = member(i, a);
      if (v && t_.type(v) == '"') anchors_.emplace(base + "#" + std::string(t_.string(v)), i);
    }
    for_members(i, [&](std::string_view key, std::size_t v) {
      const std::string kptr = child_pointer(ptr, key);
      switch (keyword(key)) {
        case Kw::additional_properties:
        case Kw::property_names:
        case Kw::additional_items:
        case Kw::contains:
        case Kw::not_:
        case Kw::if_:
        case Kw::then_:
        case Kw::else_:
        case Kw::unevaluated_properties:
        case Kw::unevaluated_items:
        case Kw::content_schema:
          scan(v, kptr, base, depth + 1);
          break;
        case Kw::items:
          if (t_.type(v) == '[') {
            for_elements(v, [&](std::size_t k, std::size_t e) { scan(e, child_pointer(kptr, k), base, depth + 1); });
          } else {
            scan(v, kptr, base, depth + 1);
          }
          break;
        case Kw::properties:
        case Kw::pattern_properties:
        case Kw::defs:
        case Kw::dependent_schemas:
        case Kw::dependencies:
          if (t_.type(v) == '{')
            for_members(v, [&](std::string_view k, std::size_t s) { scan(s, child_pointer(kptr, k), base, depth + 1); });
          break;
        case Kw::prefix_items:
        case Kw::all_of:
        case Kw::any_of:
        case Kw::one_of:
          if (t_.type(v) == '[')
            for_elements(v, [&](std::size_t k, std::size_t e) { scan(e, child_pointer(kptr, k), base, depth + 1); });
          break;
        default: break;
      }
    });
  }

  std::uint64_t count_value(std::size_t v, const std::string& ptr) const {
    if (is_number_type(t_.type(v))) {
      const Num n = number_at(t_, v);
      if (is_integer(n) && compare(n, Num{}) >= 0) {
        switch (n.kind) {
          case Num::i64: return std::uint64_t(n.i);
          case Num::u64: return n.u;
          case Num::f64: return n.d >= 1.8e19 ? kUnbounded : std::uint64_t(n.d);
          default: return kUnbounded;
        }
      }
    }
    fail(ptr, "must be a non-negative integer");
  }

  Num number_value(std::size_t v, const std::string& ptr, const char* extra = "") const {
    if (!is_number_type(t_.type(v))) fail(ptr, std::string("must be a number, got ") + json_type(t_.type(v)) + extra);
    return number_at(t_, v);
  }

  void require_schema(std::size_t v, const std::string& ptr) const {
    const char t = t_.type(v);
    if (t != '{' && t != 't' && t != 'f') fail(ptr, std::string("a schema must be an object or a boolean, got ") + json_type(t));
  }

  std::vector<std::int32_t> schema_array(std::size_t v, const std::string& ptr, const std::string& base, int depth) {
    if (t_.type(v) != '[') fail(ptr, std::string("must be an array of schemas, got ") + json_type(t_.type(v)));
    std::vector<std::int32_t> out;
    for_elements(v, [&](std::size_t k, std::size_t e) { out.push_back(compile(e, child_pointer(ptr, k), base, depth + 1)); });
    return out;
  }

  std::vector<std::string_view> string_array(std::size_t v, const std::string& ptr) const {
    if (t_.type(v) != '[') fail(ptr, std::string("must be an array of strings, got ") + json_type(t_.type(v)));
    std::vector<std::string_view> out;
    for_elements(v, [&](std::size_t k, std::size_t e) {
      if (t_.type(e) != '"') fail(child_pointer(ptr, k), std::string("must be a string, got ") + json_type(t_.type(e)));
      out.push_back(t_.string(e));
    });
    return out;
  }

  // The regex for `source`; UINT32_MAX when the pattern is unsupported (noted).
  std::uint32_t regex(std::string_view source, const std::string& kw_ptr, const char* keyword_name,
                      const std::string& schema_ptr) {
    auto it = regex_ids_.find(std::string(source));
    std::uint32_t id;
    if (it != regex_ids_.end()) {
      id = it->second;
    } else {
      auto r = std::make_unique<CompiledRegex>(CompiledRegex{std::string(source), Regex(source)});
      if (r->regex.status() == Regex::Status::invalid)
        fail(kw_ptr, "pattern " + excerpt(source) + " does not compile: " + r->regex.reason());
      id = std::uint32_t(out_.regexes.size());
      out_.regexes.push_back(std::move(r));
      regex_ids_.emplace(std::string(source), id);
    }
    const CompiledRegex& cr = *out_.regexes[id];
    if (cr.regex.status() == Regex::Status::unsupported) {
      unsupported_.insert(std::string(keyword_name) + " " + excerpt(source) + " (" + cr.regex.reason() + ") at " +
                          where(schema_ptr));
      return UINT32_MAX;
    }
    return id;
  }

  std::int32_t compile(std::size_t i, const std::string& ptr, const std::string& outer, int depth) {
    if (auto it = compiled_.find(i); it != compiled_.end()) return it->second;
    if (depth > kMaxSchemaDepth) fail(ptr, "subschemas nested deeper than " + std::to_string(kMaxSchemaDepth) + " levels");
    require_schema(i, ptr);
    const std::int32_t index = std::int32_t(out_.nodes.size());
    out_.nodes.emplace_back();
    compiled_.emplace(i, index);
    Node n;
    if (t_.type(i) == 't' || t_.type(i) == 'f') {
      n.shape = t_.type(i) == 't' ? Node::Shape::always_true : Node::Shape::always_false;
      out_.nodes[std::size_t(index)] = std::move(n);
      return index;
    }
    auto loc = locations_.find(i);
    const std::string base = loc != locations_.end() ? loc->second.base : base_of(i, outer);

    std::vector<std::pair<std::string_view, std::int32_t>> properties;
    std::vector<std::string_view> required;
    std::vector<std::pair<std::string_view, std::vector<std::string_view>>> dep_required;
    std::vector<std::pair<std::string_view, std::int32_t>> dep_schemas;
    bool tuple_items = false;
    std::size_t additional_items = 0;
    std::string additional_items_ptr;

    for_members(i, [&](std::string_view key, std::size_t v) {
      const Kw kw = keyword(key);
      if (kw == Kw::unknown) return;
      const std::string kptr = child_pointer(ptr, key);
      const char vt = t_.type(v);
      switch (kw) {
        case Kw::type: {
          auto bit = [&](std::string_view name, const std::string& p) -> std::uint8_t {
            if (name == "null") return kNull;
            if (name == "boolean") return kBoolean;
            if (name == "object") return kObject;
            if (name == "array") return kArray;
            if (name == "number") return kNumber;
            if (name == "integer") return kInteger;
            if (name == "string") return kString;
            fail(p, "unknown type " + excerpt(name) +
                        " (expected null, boolean, object, array, number, integer or string)");
          };
          if (vt == '"') {
            n.types |= bit(t_.string(v), kptr);
          } else if (vt == '[') {
            for_elements(v, [&](std::size_t k, std::size_t e) {
              if (t_.type(e) != '"') fail(child_pointer(kptr, k), "must be a type name (a string)");
              n.types |= bit(t_.string(e), child_pointer(kptr, k));
            });
            if (n.types == 0) n.types = 0x80;  // "type": [] allows nothing
          } else {
            fail(kptr, std::string("must be a type name or an array of them, got ") + json_type(vt));
          }
          break;
        }
        case Kw::properties:
          if (vt != '{') fail(kptr, std::string("must be an object of schemas, got ") + json_type(vt));
          for_members(v, [&](std::string_view name, std::size_t s) {
            properties.emplace_back(name, compile(s, child_pointer(kptr, name), base, depth + 1));
          });
          break;
        case Kw::required:
          for (std::string_view name : string_array(v, kptr)) required.push_back(name);
          break;
        case Kw::additional_properties:
          n.additional_properties = compile(v, kptr, base, depth + 1);
          break;
        case Kw::pattern_properties:
          if (vt != '{') fail(kptr, std::string("must be an object of schemas, got ") + json_type(vt));
          for_members(v, [&](std::string_view source, std::size_t s) {
            const std::string p = child_pointer(kptr, source);
            const std::int32_t sub = compile(s, p, base, depth + 1);
            const std::uint32_t re = regex(source, p, "patternProperties", ptr);
            n.pattern_properties.push_back({re, re == UINT32_MAX ? -1 : sub});
          });
          break;
        case Kw::property_names:
          n.property_names = compile(v, kptr, base, depth + 1);
          break;
        case Kw::min_properties: n.min_properties = count_value(v, kptr); break;
        case Kw::max_properties: n.max_properties = count_value(v, kptr); break;
        case Kw::dependent_required:
          if (vt != '{') fail(kptr, std::string("must be an object of string arrays, got ") + json_type(vt));
          for_members(v, [&](std::string_view name, std::size_t a) {
            dep_required.emplace_back(name, string_array(a, child_pointer(kptr, name)));
          });
          break;
        case Kw::dependent_schemas:
          if (vt != '{') fail(kptr, std::string("must be an object of schemas, got ") + json_type(vt));
          for_members(v, [&](std::string_view name, std::size_t s) {
            dep_schemas.emplace_back(name, compile(s, child_pointer(kptr, name), base, depth + 1));
          });
          break;
        case Kw::dependencies:  // draft 7: an array is dependentRequired, a schema dependentSchemas
          if (vt != '{') fail(kptr, std::string("must be an object, got ") + json_type(vt));
          for_members(v, [&](std::string_view name, std::size_t s) {
            if (t_.type(s) == '[') {
              dep_required.emplace_back(name, string_array(s, child_pointer(kptr, name)));
            } else {
              dep_schemas.emplace_back(name, compile(s, child_pointer(kptr, name), base, depth + 1));
            }
          });
          break;
        case Kw::enum_:
          if (vt != '[') fail(kptr, std::string("must be an array, got ") + json_type(vt));
          n.has_enum = true;
          n.enum_at = v;
          for_elements(v, [&](std::size_t, std::size_t e) {
            if (t_.type(e) == '"') {
              n.enum_strings.push_back(t_.string(e));
            } else {
              n.enum_others.push_back(e);
            }
          });
          std::sort(n.enum_strings.begin(), n.enum_strings.end());
          break;
        case Kw::const_: n.const_value = std::int64_t(v); break;
        case Kw::items:
          if (vt == '[') {  // draft 7's tuple form: prefixItems, with additionalItems after it
            tuple_items = true;
            n.prefix_items = schema_array(v, kptr, base, depth);
          } else {
            n.items = compile(v, kptr, base, depth + 1);
          }
          break;
        case Kw::prefix_items: n.prefix_items = schema_array(v, kptr, base, depth); break;
        case Kw::additional_items:
          additional_items = v;
          additional_items_ptr = kptr;
          break;
        case Kw::contains: n.contains = compile(v, kptr, base, depth + 1); break;
        case Kw::min_contains: n.min_contains = count_value(v, kptr); break;
        case Kw::max_contains: n.max_contains = count_value(v, kptr); break;
        case Kw::min_items: n.min_items = count_value(v, kptr); break;
        case Kw::max_items: n.max_items = count_value(v, kptr); break;
        case Kw::unique_items:
          if (vt != 't' && vt != 'f') fail(kptr, std::string("must be a boolean, got ") + json_type(vt));
          n.unique_items = vt == 't';
          break;
        case Kw::min_length: n.min_length = count_value(v, kptr); break;
        case Kw::max_length: n.max_length = count_value(v, kptr); break;
        case Kw::minimum: n.minimum = {true, number_value(v, kptr)}; break;
        case Kw::maximum: n.maximum = {true, number_value(v, kptr)}; break;
        case Kw::exclusive_minimum:
          n.exclusive_minimum = {true, number_value(v, kptr, " (the draft-04 boolean form is not supported)")};
          break;
        case Kw::exclusive_maximum:
          n.exclusive_maximum = {true, number_value(v, kptr, " (the draft-04 boolean form is not supported)")};
          break;
        case Kw::multiple_of: {
          const Num m = number_value(v, kptr);
          if (compare(m, Num{}) <= 0) fail(kptr, "must be greater than 0");
          n.has_multiple_of = true;
          n.multiple_of = make_divisor(m);
          break;
        }
        case Kw::any_of:
        case Kw::one_of:
        case Kw::all_of: {
          std::vector<std::int32_t> subs = schema_array(v, kptr, base, depth);
          if (subs.empty()) fail(kptr, "must be a non-empty array of schemas");
          (kw == Kw::any_of ? n.any_of : kw == Kw::one_of ? n.one_of : n.all_of) = std::move(subs);
          break;
        }
        case Kw::not_: n.not_ = compile(v, kptr, base, depth + 1); break;
        case Kw::if_: n.if_ = compile(v, kptr, base, depth + 1); break;
        case Kw::then_: n.then_ = compile(v, kptr, base, depth + 1); break;
        case Kw::else_: n.else_ = compile(v, kptr, base, depth + 1); break;
        case Kw::ref:
          if (vt != '"') fail(kptr, std::string("must be a string, got ") + json_type(vt));
          pending_.push_back({index, std::string(t_.string(v)), base, ptr});
          break;
        case Kw::defs:
          if (vt != '{') fail(kptr, std::string("must be an object of schemas, got ") + json_type(vt));
          for_members(v, [&](std::string_view name, std::size_t s) { compile(s, child_pointer(kptr, name), base, depth + 1); });
          break;
        case Kw::id:
        case Kw::anchor:
        case Kw::dynamic_anchor:
          if (vt != '"') fail(kptr, std::string("must be a string, got ") + json_type(vt));
          break;
        case Kw::pattern: {
          if (vt != '"') fail(kptr, std::string("must be a string, got ") + json_type(vt));
          const std::uint32_t re = regex(t_.string(v), kptr, "pattern", ptr);
          if (re != UINT32_MAX) n.patterns.push_back(re);
          break;
        }
        case Kw::dynamic_ref:
        case Kw::recursive_ref:
        case Kw::unevaluated_properties:
        case Kw::unevaluated_items:
          unsupported_.insert(std::string(key) + " at " + where(ptr));
          break;
        case Kw::schema: {
          // The published drafts are read as 2020-12; a meta-schema of one's own may turn
          // vocabularies off, which this validator cannot honour.
          const std::string_view uri = vt == '"' ? t_.string(v) : std::string_view();
          if (uri.rfind("https://json-schema.org/", 0) != 0 && uri.rfind("http://json-schema.org/", 0) != 0)
            unsupported_.insert("$schema " + excerpt(uri) + " (a custom meta-schema) at " + where(ptr));
          break;
        }
        case Kw::content_schema:  // an annotation (applies to decoded content only)
        case Kw::unknown: break;
      }
    });

    if (tuple_items && additional_items) n.items = compile(additional_items, additional_items_ptr, base, depth + 1);
    build_table(n, properties, required, dep_required, dep_schemas);

    n.number_checks = n.minimum.set || n.maximum.set || n.exclusive_minimum.set || n.exclusive_maximum.set ||
                      n.has_multiple_of;
    n.string_checks = n.min_length > 0 || n.max_length != kUnbounded || !n.patterns.empty();
    n.array_checks = n.min_items > 0 || n.max_items != kUnbounded || n.unique_items || !n.prefix_items.empty() ||
                     n.items >= 0 || n.contains >= 0;
    n.object_checks = !n.table.empty() || !n.pattern_properties.empty() || n.additional_properties >= 0 ||
                      n.property_names >= 0 || n.min_properties > 0 || n.max_properties != kUnbounded ||
                      !n.dependent_schemas.empty();
    n.applicators = !n.all_of.empty() || !n.any_of.empty() || !n.one_of.empty() || n.not_ >= 0 || n.if_ >= 0;
    out_.nodes[std::size_t(index)] = std::move(n);
    return index;
  }

  void build_table(Node& n, const std::vector<std::pair<std::string_view, std::int32_t>>& properties,
                   const std::vector<std::string_view>& required,
                   const std::vector<std::pair<std::string_view, std::vector<std::string_view>>>& dep_required,
                   const std::vector<std::pair<std::string_view, std::int32_t>>& dep_schemas) {
    std::vector<PropSlot> slots;
    auto slot = [&](std::string_view name) -> PropSlot& {
      for (PropSlot& s : slots)
        if (s.name == name) return s;
      slots.push_back({name, name_hash(name), -1, -1});
      return slots.back();
    };
    auto bit = [&](std::string_view name) -> NamedBit {
      PropSlot& s = slot(name);
      if (s.bit < 0) s.bit = std::int32_t(n.bits++);
      return {s.name, std::uint32_t(s.bit)};
    };
    for (const auto& [name, schema] : properties) slot(name).schema = schema;
    for (std::string_view name : required) n.required.push_back(bit(name));
    for (const auto& [key, names] : dep_required) {
      DependentRequired d{bit(key), {}};
      for (std::string_view name : names) d.names.push_back(bit(name));
      n.dependent_required.push_back(std::move(d));
    }
    for (const auto& [key, schema] : dep_schemas) n.dependent_schemas.push_back({bit(key), schema});
    if (slots.empty()) return;
    std::size_t size = 4;
    while (size < 2 * slots.size()) size *= 2;
    n.table.assign(size, PropSlot{});
    n.table_mask = std::uint32_t(size - 1);
    for (const PropSlot& s : slots) {
      std::uint32_t k = s.hash & n.table_mask;
      while (n.table[k].name.data() != nullptr) k = (k + 1) & n.table_mask;
      n.table[k] = s;
    }
    if (!n.dependent_required.empty() || !n.required.empty()) n.object_checks = true;
  }

  // The node a $ref points at, compiled on demand; -1 when it is not in this document.
  std::int32_t resolve(const Pending& ref) {
    std::string uri, fragment;
    split_fragment(resolve_reference(ref.base, ref.ref.substr(0, ref.ref.find('#'))), uri, fragment);
    const std::size_t hash = ref.ref.find('#');
    fragment = hash == std::string::npos ? std::string() : ref.ref.substr(hash + 1);
    auto res = resources_.find(uri);
    if (res == resources_.end()) {
      unsupported_.insert("$ref to a remote document at " + where(ref.pointer));
      return -1;
    }
    std::size_t target = res->second;
    const auto loc = locations_.find(target);
    std::string ptr = loc != locations_.end() ? loc->second.pointer : "";
    std::string base = loc != locations_.end() ? loc->second.base : uri;
    const std::string ref_ptr = child_pointer(ref.pointer, "$ref");
    if (!fragment.empty() && fragment[0] != '/') {
      auto a = anchors_.find(uri + "#" + fragment);
      if (a == anchors_.end()) fail(ref_ptr, "$ref " + excerpt(ref.ref) + " names an anchor that does not exist");
      target = a->second;
      const auto l = locations_.find(target);
      ptr = l->second.pointer;
      base = l->second.base;
    } else if (!fragment.empty()) {
      std::string decoded;
      if (!percent_decode(fragment, decoded)) fail(ref_ptr, "$ref " + excerpt(ref.ref) + " has a bad percent-escape");
      std::size_t at = 1;
      while (at <= decoded.size()) {
        std::size_t slash = decoded.find('/', at);
        if (slash == std::string::npos) slash = decoded.size();
        std::string token;
        for (std::size_t k = at; k < slash; ++k) {
          if (decoded[k] == '~' && k + 1 < slash && (decoded[k + 1] == '0' || decoded[k + 1] == '1')) {
            token += decoded[k + 1] == '0' ? '~' : '/';
            ++k;
          } else if (decoded[k] == '~') {
            fail(ref_ptr, "$ref " + excerpt(ref.ref) + " has a bad ~ escape");
          } else {
            token += decoded[k];
          }
        }
        at = slash + 1;
        std::size_t next = 0;
        if (t_.type(target) == '{') {
          next = member(target, token);
        } else if (t_.type(target) == '[' && !token.empty() && token.size() < 10 &&
                   std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; }) &&
                   (token == "0" || token[0] != '0')) {
          const std::size_t want = std::stoul(token);
          for_elements(target, [&](std::size_t k, std::size_t e) {
            if (k == want) next = e;
          });
        }
        if (!next) fail(ref_ptr, "$ref " + excerpt(ref.ref) + " does not resolve (no " + excerpt(token) + ")");
        target = next;
        ptr = child_pointer(ptr, token);
        if (t_.type(target) == '{') base = base_of(target, base);
        if (const auto l = locations_.find(target); l != locations_.end()) base = l->second.base;
      }
    }
    const char tt = t_.type(target);
    if (tt != '{' && tt != 't' && tt != 'f')
      fail(ref_ptr, "$ref " + excerpt(ref.ref) + " points at " + json_type(tt) + ", not a schema");
    return compile(target, ptr, base, 0);
  }
};

}  // namespace

void compile_schema(std::string_view schema_json, CompiledSchema& out) {
  simdjson::dom::parser parser;
  simdjson::dom::element root;
  simdjson::padded_string padded(schema_json);
  simdjson::error_code err = parser.allocate(std::max<std::size_t>(padded.size(), 64), text::kMaxDepth + 1);
  if (!err) err = parser.parse(padded).get(root);
  if (!err) {
    copy_tape(parser.doc, out.tape);
  } else {
    // simdjson refuses numbers beyond 64 bits / double range: keep those as text.
    std::string why = fallback_may_help(err) ? parse_fallback(schema_json, out.tape)
                                             : std::string(simdjson::error_message(err));
    if (!why.empty()) throw std::invalid_argument("schema is not valid JSON: " + why);
  }
  const char t = out.tape.view().type(Tape::kRoot);
  if (t != '{' && t != 't' && t != 'f')
    throw std::invalid_argument(std::string("invalid schema at (root): a schema must be an object or a boolean, got ") +
                                json_type(t));
  Compiler(out).run();
}

}  // namespace llmbridge::schema::detail
