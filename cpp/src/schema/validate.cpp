// The evaluator: walks the instance's tape against the compiled nodes. A first pass only
// answers valid / invalid (stopping at the first failure, allocating nothing); only an
// invalid instance is walked again to collect errors with their pointers and messages.
#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "compiled.hpp"
#include "llmbridge/text/json_escape.hpp"

namespace llmbridge::schema::detail {

namespace {

constexpr int kMaxEvalDepth = 1500;
constexpr std::size_t kExcerptBytes = 60;

struct PathToken {
  std::size_t value;  // the key's tape index, or the array index
  bool index;
};

std::uint8_t type_bits(const Tape& t, std::size_t i) {
  switch (t.type(i)) {
    case '"': return kString;
    case '{': return kObject;
    case '[': return kArray;
    case 't':
    case 'f': return kBoolean;
    case 'n': return kNull;
    case 'l':
    case 'u': return kNumber | kInteger;
    default: return is_integer(number_at(t, i)) ? (kNumber | kInteger) : kNumber;
  }
}

const char* type_name(const Tape& t, std::size_t i) {
  switch (t.type(i)) {
    case '"': return "string";
    case '{': return "object";
    case '[': return "array";
    case 't':
    case 'f': return "boolean";
    case 'n': return "null";
    case 'l':
    case 'u': return "integer";
    case 'd': return "number";
    default: return is_integer(number_at(t, i)) ? "integer" : "number";
  }
}

// Appends `s` JSON-quoted, cut on a code point boundary so that the quotation stays
// within `budget` bytes (with "..." when cut).
void append_quoted(std::string& out, std::string_view s, std::size_t budget = kExcerptBytes) {
  const std::size_t limit = out.size() + budget - 5;  // room for the quotes and "..."
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const std::size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    char esc[8];
    std::size_t esc_len = 0;
    if (c == '"' || c == '\\') {
      esc[0] = '\\', esc[1] = char(c), esc_len = 2;
    } else if (c < 0x20) {
      std::string e;
      text::append_json_escape(e, c);  // \n, \t, ... or \u00XX
      std::memcpy(esc, e.data(), e.size());
      esc_len = e.size();
    }
    const std::size_t piece = esc_len ? esc_len : len;
    if (out.size() + piece > limit && i + len < s.size() + 0) {
      out += "...";
      break;
    }
    if (esc_len) {
      out.append(esc, esc_len);
    } else {
      out.append(s.data() + i, len);
    }
    i += len;
  }
  out += '"';
}

// A short rendering of a value for messages: strings quoted, numbers as text, containers
// abbreviated. At most about kExcerptBytes.
std::string show(const Tape& t, std::size_t i) {
  std::string out;
  switch (t.type(i)) {
    case '"': append_quoted(out, t.string(i)); break;
    case '{': out = t.size(i) ? "{...}" : "{}"; break;
    case '[': out = t.size(i) ? "[...]" : "[]"; break;
    case 't': out = "true"; break;
    case 'f': out = "false"; break;
    case 'n': out = "null"; break;
    default: out = number_text(number_at(t, i)); break;
  }
  return out;
}

std::size_t code_points(std::string_view s) {
  std::size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

class Evaluator {
 public:
  Evaluator(const CompiledSchema& s, const Tape& t, std::vector<PathToken>& path)
      : s_(s), schema_(s.tape.view()), t_(t), path_(path) {}

  void collect_into(std::vector<SchemaError>* out, std::size_t max) {
    out_ = out;
    max_ = max;
  }

  bool eval(std::int32_t ni, std::size_t i, bool collect) {
    const Node& n = s_.nodes[std::size_t(ni)];
    if (n.shape == Node::Shape::always_true) return true;
    if (n.shape == Node::Shape::always_false) {
      if (collect) report("no value is allowed here (false schema)");
      return false;
    }
    if (depth_ >= kMaxEvalDepth) {
      if (collect) report("nested deeper than " + std::to_string(kMaxEvalDepth) + " levels: not validated");
      return false;
    }
    ++depth_;
    const bool ok = keywords(n, i, collect);
    --depth_;
    return ok;
  }

 private:
  // eval() in collect mode one step down the instance (the path is kept only there).
  bool eval_at(PathToken step, std::int32_t ni, std::size_t i) {
    path_.push_back(step);
    const bool ok = eval(ni, i, true);
    path_.pop_back();
    return ok;
  }

  const CompiledSchema& s_;
  Tape schema_;
  const Tape& t_;
  std::vector<PathToken>& path_;
  std::vector<SchemaError>* out_ = nullptr;
  std::size_t max_ = 0;
  int depth_ = 0;

  bool full() const { return out_->size() >= max_; }

  std::string pointer() const {
    std::string p;
    for (const PathToken& tok : path_) {
      p += '/';
      if (tok.index) {
        p += std::to_string(tok.value);
        continue;
      }
      for (char c : t_.string(tok.value)) {
        if (c == '~') {
          p += "~0";
        } else if (c == '/') {
          p += "~1";
        } else {
          p += c;
        }
      }
    }
    return p;
  }

  void report(std::string message) {
    if (!full()) out_->push_back({pointer(), std::move(message)});
  }

  // Runs `ni` on `i` collecting at most one error, for the detail of a summary message.
  bool first_error(std::int32_t ni, std::size_t i, SchemaError& e) {
    std::vector<SchemaError> one;
    std::vector<SchemaError>* saved = out_;
    const std::size_t saved_max = max_;
    out_ = &one;
    max_ = 1;
    eval(ni, i, true);
    out_ = saved;
    max_ = saved_max;
    if (one.empty()) return false;
    e = std::move(one.front());
    return true;
  }

  std::string detail_of(std::int32_t ni, std::size_t i, const char* label, std::size_t k) {
    SchemaError e;
    if (!first_error(ni, i, e)) return "";
    std::string here = pointer();
    std::string out = std::string("; ") + label + "/" + std::to_string(k) + ": ";
    if (e.pointer != here) out += "at " + (e.pointer.size() > 80 ? e.pointer.substr(0, 77) + "..." : e.pointer) + ": ";
    return out + e.message;
  }

  // The message for an instance that matches none of `branches`: names the one
  // alternative whose type fits, when exactly one does.
  std::string none_matched(const std::vector<std::int32_t>& branches, std::size_t i, const char* label) {
    std::string msg = "matches none of the " + std::to_string(branches.size()) + " " + label + " alternatives";
    const std::uint8_t bits = type_bits(t_, i);
    std::size_t candidate = branches.size(), fits = 0;
    for (std::size_t k = 0; k < branches.size(); ++k) {
      const Node& b = s_.nodes[std::size_t(branches[k])];
      if (b.shape == Node::Shape::keywords && (b.types == 0 || (b.types & bits))) {
        ++fits;
        candidate = k;
      }
    }
    if (fits == 1) msg += detail_of(branches[candidate], i, label, candidate);
    return msg;
  }

  std::string type_message(std::uint8_t want, std::size_t i) const {
    if (want == 0x80) return std::string("no type is allowed (\"type\" is empty), got ") + type_name(t_, i);
    static const std::pair<std::uint8_t, const char*> kOrder[] = {
        {kString, "string"}, {kNumber, "number"}, {kInteger, "integer"}, {kObject, "object"},
        {kArray, "array"},   {kBoolean, "boolean"}, {kNull, "null"}};
    std::vector<const char*> names;
    for (const auto& [bit, name] : kOrder)
      if (want & bit) names.push_back(name);
    std::string msg = "expected ";
    if (names.size() > 2) msg += "one of ";
    for (std::size_t k = 0; k < names.size(); ++k) {
      if (k) msg += names.size() == 2 ? " or " : ", ";
      msg += names[k];
    }
    return msg + ", got " + type_name(t_, i);
  }

  bool in_enum(const Node& n, std::size_t i) const {
    if (t_.type(i) == '"') return std::binary_search(n.enum_strings.begin(), n.enum_strings.end(), t_.string(i));
    for (std::size_t v : n.enum_others)
      if (equal(t_, i, schema_, v)) return true;
    return false;
  }

  std::string enum_message(const Node& n, std::size_t i) const {
    std::string list;
    std::size_t shown = 0, total = schema_.size(n.enum_at);
    for (std::size_t j = n.enum_at + 1, end = schema_.end_of(n.enum_at) - 1; j < end; j = schema_.next(j)) {
      std::string item = show(schema_, j);
      if (list.size() + item.size() > kExcerptBytes && shown > 0) break;
      if (shown) list += ", ";
      list += item;
      ++shown;
    }
    if (shown < total) list += ", ... (" + std::to_string(total) + " values)";
    return show(t_, i) + " is not one of " + list;
  }

  bool keywords(const Node& n, std::size_t i, bool collect) {
    if (n.types && !(n.types & type_bits(t_, i))) {
      if (collect) report(type_message(n.types, i));
      return false;  // the other keywords would only repeat the type problem
    }
    bool ok = true;
#define LLMBRIDGE_FAILED()                 \
  do {                                     \
    ok = false;                            \
    if (!collect || full()) return false;  \
  } while (0)
    if (n.const_value >= 0 && !equal(t_, i, schema_, std::size_t(n.const_value))) {
      if (collect) report(show(t_, i) + " is not the const value " + show(schema_, std::size_t(n.const_value)));
      LLMBRIDGE_FAILED();
    }
    if (n.has_enum && !in_enum(n, i)) {
      if (collect) report(enum_message(n, i));
      LLMBRIDGE_FAILED();
    }
    switch (t_.type(i)) {
      case '"':
        if (n.string_checks && !string_checks(n, i, collect)) LLMBRIDGE_FAILED();
        break;
      case '{':
        if (n.object_checks && !object_checks(n, i, collect)) LLMBRIDGE_FAILED();
        break;
      case '[':
        if (n.array_checks && !array_checks(n, i, collect)) LLMBRIDGE_FAILED();
        break;
      case 't':
      case 'f':
      case 'n': break;
      default:
        if (n.number_checks && !number_checks(n, i, collect)) LLMBRIDGE_FAILED();
        break;
    }
    if (n.ref >= 0 && !eval(n.ref, i, collect)) LLMBRIDGE_FAILED();
    if (!n.applicators) return ok;
    for (std::int32_t b : n.all_of)
      if (!eval(b, i, collect)) LLMBRIDGE_FAILED();
    if (!n.any_of.empty()) {
      bool any = false;
      for (std::int32_t b : n.any_of)
        if ((any = eval(b, i, false))) break;
      if (!any) {
        if (collect) report(none_matched(n.any_of, i, "anyOf"));
        LLMBRIDGE_FAILED();
      }
    }
    if (!n.one_of.empty()) {
      std::size_t first = 0, matches = 0;
      for (std::size_t k = 0; k < n.one_of.size() && matches < 2; ++k) {
        if (eval(n.one_of[k], i, false)) {
          if (matches++ == 0) {
            first = k;
          } else if (collect) {
            report("matches more than one oneOf alternative (oneOf/" + std::to_string(first) + " and oneOf/" +
                   std::to_string(k) + ")");
          }
        }
      }
      if (matches == 0 && collect) report(none_matched(n.one_of, i, "oneOf"));
      if (matches != 1) LLMBRIDGE_FAILED();
    }
    if (n.not_ >= 0 && eval(n.not_, i, false)) {
      if (collect) report("must not match the \"not\" schema");
      LLMBRIDGE_FAILED();
    }
    if (n.if_ >= 0) {
      const std::int32_t branch = eval(n.if_, i, false) ? n.then_ : n.else_;
      if (branch >= 0 && !eval(branch, i, collect)) LLMBRIDGE_FAILED();
    }
    return ok;
  }

  bool string_checks(const Node& n, std::size_t i, bool collect) {
    const std::string_view s = t_.string(i);
    bool ok = true;
    // A string has at most as many code points as bytes: count only when that decides.
    if (n.min_length > 0 || s.size() > n.max_length) {
      const std::size_t cps = code_points(s);
      if (cps < n.min_length) {
        if (collect) {
          report("string has " + std::to_string(cps) + " characters, fewer than minLength " +
                 std::to_string(n.min_length));
        }
        LLMBRIDGE_FAILED();
      }
      if (cps > n.max_length) {
        if (collect) {
          report("string has " + std::to_string(cps) + " characters, more than maxLength " +
                 std::to_string(n.max_length));
        }
        LLMBRIDGE_FAILED();
      }
    }
    for (std::uint32_t r : n.patterns) {
      const CompiledRegex& re = *s_.regexes[r];
      if (!re.regex.search(s)) {
        if (collect) {
          std::string msg;
          append_quoted(msg, s, 40);
          msg += " does not match pattern ";
          append_quoted(msg, re.source, 60);
          report(std::move(msg));
        }
        LLMBRIDGE_FAILED();
      }
    }
    return ok;
  }

  bool number_checks(const Node& n, std::size_t i, bool collect) {
    const Num x = number_at(t_, i);
    bool ok = true;
    if (n.minimum.set && compare(x, n.minimum.value) < 0) {
      if (collect) report(number_text(x) + " is less than the minimum " + number_text(n.minimum.value));
      LLMBRIDGE_FAILED();
    }
    if (n.exclusive_minimum.set && compare(x, n.exclusive_minimum.value) <= 0) {
      if (collect) {
        report(number_text(x) + " is not greater than " + number_text(n.exclusive_minimum.value) +
               " (exclusiveMinimum)");
      }
      LLMBRIDGE_FAILED();
    }
    if (n.maximum.set && compare(x, n.maximum.value) > 0) {
      if (collect) report(number_text(x) + " is greater than the maximum " + number_text(n.maximum.value));
      LLMBRIDGE_FAILED();
    }
    if (n.exclusive_maximum.set && compare(x, n.exclusive_maximum.value) >= 0) {
      if (collect) {
        report(number_text(x) + " is not less than " + number_text(n.exclusive_maximum.value) +
               " (exclusiveMaximum)");
      }
      LLMBRIDGE_FAILED();
    }
    if (n.has_multiple_of && !is_multiple(x, n.multiple_of)) {
      if (collect) report(number_text(x) + " is not a multiple of " + number_text(n.multiple_of.value));
      LLMBRIDGE_FAILED();
    }
    return ok;
  }

  // The positions (0-based) of two equal items, or false.
  bool duplicate(std::size_t i, std::size_t size, std::size_t& a, std::size_t& b) const {
    if (size < 2) return false;
    const std::size_t end = t_.end_of(i) - 1;
    if (size <= 16) {  // pairwise, straight on the tape: no allocation
      std::size_t x = 0;
      for (std::size_t p = i + 1; p < end; p = t_.next(p), ++x) {
        std::size_t y = x + 1;
        for (std::size_t q = t_.next(p); q < end; q = t_.next(q), ++y) {
          if (equal(t_, p, t_, q)) {
            a = x, b = y;
            return true;
          }
        }
      }
      return false;
    }
    std::vector<std::size_t> at;
    at.reserve(size);
    for (std::size_t j = i + 1; j < end; j = t_.next(j)) at.push_back(j);
    std::vector<std::pair<std::uint64_t, std::size_t>> hashed(size);
    for (std::size_t k = 0; k < size; ++k) hashed[k] = {hash_value(t_, at[k]), k};
    std::sort(hashed.begin(), hashed.end());
    bool found = false;
    for (std::size_t s = 0; s < size;) {
      std::size_t e = s + 1;
      while (e < size && hashed[e].first == hashed[s].first) ++e;
      for (std::size_t x = s; x < e; ++x)
        for (std::size_t y = x + 1; y < e; ++y)
          if (equal(t_, at[hashed[x].second], t_, at[hashed[y].second])) {
            const std::size_t lo = std::min(hashed[x].second, hashed[y].second);
            const std::size_t hi = std::max(hashed[x].second, hashed[y].second);
            if (!found || lo < a || (lo == a && hi < b)) a = lo, b = hi;
            found = true;
          }
      s = e;
    }
    return found;
  }

  bool array_checks(const Node& n, std::size_t i, bool collect) {
    bool ok = true;
    const std::size_t size = t_.size(i);
    if (size < n.min_items) {
      if (collect) report("array has " + std::to_string(size) + " items, fewer than minItems " + std::to_string(n.min_items));
      LLMBRIDGE_FAILED();
    }
    if (size > n.max_items) {
      if (collect) report("array has " + std::to_string(size) + " items, more than maxItems " + std::to_string(n.max_items));
      LLMBRIDGE_FAILED();
    }
    if (n.unique_items) {
      std::size_t a = 0, b = 0;
      if (duplicate(i, size, a, b)) {
        if (collect) report("items " + std::to_string(a) + " and " + std::to_string(b) + " are equal (uniqueItems)");
        LLMBRIDGE_FAILED();
      }
    }
    if (!n.prefix_items.empty() || n.items >= 0) {
      std::size_t k = 0;
      for (std::size_t j = i + 1, end = t_.end_of(i) - 1; j < end; j = t_.next(j), ++k) {
        const std::int32_t sub = k < n.prefix_items.size() ? n.prefix_items[k] : n.items;
        if (sub < 0) {
          if (k >= n.prefix_items.size()) break;
          continue;
        }
        const bool good = collect ? eval_at({k, true}, sub, j) : eval(sub, j, false);
        if (!good) LLMBRIDGE_FAILED();
      }
    }
    if (n.contains >= 0) {
      std::uint64_t matches = 0;
      for (std::size_t j = i + 1, end = t_.end_of(i) - 1; j < end; j = t_.next(j)) {
        if (eval(n.contains, j, false) && ++matches > n.max_contains) break;
        if (matches >= n.min_contains && n.max_contains == kUnbounded) break;
      }
      if (matches < n.min_contains) {
        if (collect) {
          report(n.min_contains == 1 ? std::string("no item matches \"contains\"")
                                     : std::to_string(matches) + " items match \"contains\", fewer than minContains " +
                                           std::to_string(n.min_contains));
        }
        LLMBRIDGE_FAILED();
      }
      if (matches > n.max_contains) {
        if (collect) {
          report("more than maxContains " + std::to_string(n.max_contains) + " items match \"contains\"");
        }
        LLMBRIDGE_FAILED();
      }
    }
    return ok;
  }

  // properties / patternProperties / additionalProperties / propertyNames for one member.
  bool member_checks(const Node& n, std::size_t key, const PropSlot* slot, bool collect) {
    bool ok = true;
    bool matched = false;
    if (slot && slot->schema >= 0) {
      matched = true;
      const bool good = collect ? eval_at({key, false}, slot->schema, key + 1) : eval(slot->schema, key + 1, false);
      if (!good) LLMBRIDGE_FAILED();
    }
    if (!n.pattern_properties.empty()) {
      const std::string_view name = t_.string(key);
      for (const PatternSchema& p : n.pattern_properties) {
        if (p.regex == UINT32_MAX) {  // unsupported pattern: the member counts as matched, unchecked
          matched = true;
          continue;
        }
        if (!s_.regexes[p.regex]->regex.search(name)) continue;
        matched = true;
        const bool good = collect ? eval_at({key, false}, p.schema, key + 1) : eval(p.schema, key + 1, false);
        if (!good) LLMBRIDGE_FAILED();
      }
    }
    if (!matched && n.additional_properties >= 0) {
      const Node& a = s_.nodes[std::size_t(n.additional_properties)];
      if (a.shape == Node::Shape::always_false) {
        if (collect) {
          std::string msg = "property ";
          append_quoted(msg, t_.string(key));
          report(msg + " is not allowed (additionalProperties)");
        }
        LLMBRIDGE_FAILED();
      } else {
        const bool good = collect ? eval_at({key, false}, n.additional_properties, key + 1)
                                  : eval(n.additional_properties, key + 1, false);
        if (!good) LLMBRIDGE_FAILED();
      }
    }
    if (n.property_names >= 0 && !eval(n.property_names, key, false)) {
      if (collect) {
        std::string msg = "property name ";
        append_quoted(msg, t_.string(key));
        SchemaError e;
        msg += first_error(n.property_names, key, e) ? " is invalid: " + e.message : " is invalid (propertyNames)";
        report(std::move(msg));
      }
      LLMBRIDGE_FAILED();
    }
    return ok;
  }

  static bool has_bit(const std::uint64_t* bits, std::uint32_t b) { return (bits[b >> 6] >> (b & 63)) & 1; }

  // minProperties, maxProperties, required, dependentRequired.
  bool counted_checks(const Node& n, std::size_t count, const std::uint64_t* bits, bool collect) {
    bool ok = true;
    if (count < n.min_properties) {
      if (collect) {
        report("object has " + std::to_string(count) + " properties, fewer than minProperties " +
               std::to_string(n.min_properties));
      }
      LLMBRIDGE_FAILED();
    }
    if (count > n.max_properties) {
      if (collect) {
        report("object has " + std::to_string(count) + " properties, more than maxProperties " +
               std::to_string(n.max_properties));
      }
      LLMBRIDGE_FAILED();
    }
    for (const NamedBit& r : n.required) {
      if (has_bit(bits, r.bit)) continue;
      if (collect) {
        std::string msg = "missing required property ";
        append_quoted(msg, r.name);
        report(std::move(msg));
      }
      LLMBRIDGE_FAILED();
    }
    for (const DependentRequired& d : n.dependent_required) {
      if (!has_bit(bits, d.key.bit)) continue;
      for (const NamedBit& r : d.names) {
        if (has_bit(bits, r.bit)) continue;
        if (collect) {
          std::string msg = "missing property ";
          append_quoted(msg, r.name, 40);
          msg += ", required when ";
          append_quoted(msg, d.key.name, 40);
          report(msg + " is present (dependentRequired)");
        }
        LLMBRIDGE_FAILED();
      }
    }
    return ok;
  }

  bool object_checks(const Node& n, std::size_t i, bool collect) {
    bool ok = true;
    std::uint64_t local[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    std::vector<std::uint64_t> heap;
    std::uint64_t* bits = local;
    if (n.bits > 512) {
      heap.assign((n.bits + 63) / 64, 0);
      bits = heap.data();
    }
    const std::size_t end = t_.end_of(i) - 1;
    const bool lookups = !n.table.empty();
    std::size_t count = 0;
    if (!collect) {
      for (std::size_t j = i + 1; j < end; j = t_.next(j + 1)) {
        ++count;
        const PropSlot* slot = nullptr;
        if (lookups) {
          const std::string_view key = t_.string(j);
          slot = n.lookup(key, name_hash(key));
          if (slot && slot->bit >= 0) bits[slot->bit >> 6] |= std::uint64_t(1) << (slot->bit & 63);
        }
        if (!member_checks(n, j, slot, false)) return false;
      }
      if (!counted_checks(n, count, bits, false)) return false;
    } else {
      // Object-level errors first (document order): presence, then each member.
      for (std::size_t j = i + 1; j < end; j = t_.next(j + 1)) {
        ++count;
        if (!lookups) continue;
        const PropSlot* slot = n.lookup(t_.string(j), name_hash(t_.string(j)));
        if (slot && slot->bit >= 0) bits[slot->bit >> 6] |= std::uint64_t(1) << (slot->bit & 63);
      }
      if (!counted_checks(n, count, bits, true)) LLMBRIDGE_FAILED();
      for (std::size_t j = i + 1; j < end; j = t_.next(j + 1)) {
        const PropSlot* slot = lookups ? n.lookup(t_.string(j), name_hash(t_.string(j))) : nullptr;
        if (!member_checks(n, j, slot, true)) LLMBRIDGE_FAILED();
      }
    }
    for (const DependentSchema& d : n.dependent_schemas) {
      if (has_bit(bits, d.key.bit) && !eval(d.schema, i, collect)) LLMBRIDGE_FAILED();
    }
    return ok;
  }
#undef LLMBRIDGE_FAILED
};

}  // namespace

std::vector<SchemaError> validate_tape(const CompiledSchema& s, const Tape& instance, std::size_t max_errors) {
  if (max_errors == 0) throw std::invalid_argument("max_errors must be at least 1");
  thread_local std::vector<PathToken> path;
  path.clear();
  std::vector<SchemaError> errors;
  Evaluator ev(s, instance, path);
  if (ev.eval(s.root, Tape::kRoot, false)) return errors;
  path.clear();
  ev.collect_into(&errors, max_errors);
  ev.eval(s.root, Tape::kRoot, true);
  if (errors.empty()) errors.push_back({"", "does not match the schema"});  // never expected
  return errors;
}

}  // namespace llmbridge::schema::detail
