// libFuzzer target for the text -> value path: text::JsonParser (what loads() and the
// Python object builder read), text::is_valid_json, the repair-then-parse fallback of
// loads(), and llm::process_content (what a model's answer goes through).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_support.hpp"
#include "llmbridge/llm/content.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/repair.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using llmbridge::fuzz::strict_json_depth;
using llmbridge::fuzz::valid_utf8;
using namespace llmbridge;

namespace {

constexpr std::size_t kSaturatedSize = 0xFFFFFF;  // simdjson's element counts stop here

// Visits every element the way the Python object builder does (bindings/py_text.cpp),
// without recursion, and checks what it reads: counts agree with iteration, strings
// and keys are UTF-8.
void walk(simdjson::dom::element root, std::string_view input) {
  using simdjson::dom::element_type;
  std::vector<simdjson::dom::element> todo{root};
  while (!todo.empty()) {
    const simdjson::dom::element e = todo.back();
    todo.pop_back();
    switch (e.type()) {
      case element_type::OBJECT: {
        const simdjson::dom::object o(e);
        std::size_t n = 0;
        for (auto field : o) {
          check(valid_utf8(field.key), "key_is_utf8", [&] { return "input: " + show(input); });
          todo.push_back(field.value);
          ++n;
        }
        check(n == o.size() || o.size() == kSaturatedSize, "object_size_matches", [&] {
          return "input: " + show(input) + "\nsize()=" + std::to_string(o.size()) + " visited=" + std::to_string(n);
        });
        break;
      }
      case element_type::ARRAY: {
        const simdjson::dom::array a(e);
        std::size_t n = 0;
        for (auto v : a) {
          todo.push_back(v);
          ++n;
        }
        check(n == a.size() || a.size() == kSaturatedSize, "array_size_matches", [&] {
          return "input: " + show(input) + "\nsize()=" + std::to_string(a.size()) + " visited=" + std::to_string(n);
        });
        break;
      }
      case element_type::STRING: {
        const std::string_view s(e);
        check(valid_utf8(s), "string_is_utf8", [&] { return "input: " + show(input) + "\nstring: " + show(s); });
        break;
      }
      case element_type::INT64: (void)int64_t(e); break;
      case element_type::UINT64: (void)uint64_t(e); break;
      case element_type::DOUBLE: (void)double(e); break;
      case element_type::BOOL: (void)bool(e); break;
      case element_type::NULL_VALUE: break;
    }
  }
}

// The errors after which loads() hands the text to Python's json.loads.
bool python_fallback(simdjson::error_code err) {
  return err == simdjson::NUMBER_ERROR || err == simdjson::STRING_ERROR || err == simdjson::UTF8_ERROR ||
         err == simdjson::NUMBER_OUT_OF_RANGE || err == simdjson::DEPTH_ERROR;
}

void check_content(std::string_view input) {
  const llm::ContentResult c = llm::process_content(input);
  auto why = [&] {
    return "content: " + show(input) + "\nok=" + std::to_string(c.ok) + " repaired=" + std::to_string(c.repaired) +
           " truncated=" + std::to_string(c.truncated) + "\njson:  " + show(c.json) + "\nerror: " + c.error;
  };
  if (!c.ok) {
    const bool known = c.error == "empty_model_response" || c.error.rfind("invalid_json: ", 0) == 0;
    check(known && c.json.empty(), "content_error_is_a_contract_string", why);
    // "invalid_json: <why> at position N": N is a byte offset in the content.
    constexpr std::string_view kAt = " at position ";
    if (const std::size_t at = c.error.rfind(kAt); at != std::string::npos)
      check(std::stoull(c.error.substr(at + kAt.size())) <= input.size(), "content_error_position_in_content", why);
    return;
  }
  check(c.error.empty() && !c.json.empty(), "content_success_has_json", why);
  check(llmbridge::fuzz::trim_json_space(c.json).size() == c.json.size(), "content_json_trimmed", why);
  check(text::is_valid_json(c.json), "content_json_is_valid", why);
  check(strict_json_depth(c.json).has_value(), "content_json_is_rfc8259", why);
  // The JSON handed over is final: processing it again changes nothing.
  const llm::ContentResult again = llm::process_content(c.json);
  check(again.ok && again.json == c.json && !again.repaired, "content_idempotent", [&] {
    return why() + "\nsecond pass: ok=" + std::to_string(again.ok) + " repaired=" + std::to_string(again.repaired) +
           " json=" + show(again.json) + " error=" + again.error;
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const auto depth = strict_json_depth(input);
  const bool rfc_valid = depth && *depth <= text::kMaxDepth;

  simdjson::dom::element root;
  const simdjson::error_code err = text::thread_parser().parse(input, root);
  if (err == simdjson::SUCCESS) {
    check(rfc_valid, "parser_accepts_only_rfc8259", [&] { return "input: " + show(input); });
    walk(root, input);
  }
  const bool valid = text::is_valid_json(input);
  check(valid == rfc_valid, "is_valid_json_agrees_with_rfc8259", [&] {
    return "input: " + show(input) + "\nis_valid_json=" + std::to_string(valid) +
           " rfc8259=" + std::to_string(rfc_valid) + " simdjson: " + simdjson::error_message(err);
  });

  if (err != simdjson::SUCCESS) {
    // loads(): repair, then parse the repaired text; what simdjson still refuses must
    // be JSON that Python's json.loads takes.
    text::RepairOptions opts;
    opts.collect_repairs = false;
    opts.try_fast_path = false;
    const text::RepairResult r = text::repair_json(input, opts);
    if (r.ok) {
      const std::string_view json = r.text(input);
      simdjson::dom::element again;
      const simdjson::error_code err2 = text::thread_parser().parse(json, again);
      if (err2 == simdjson::SUCCESS) {
        walk(again, json);
      } else {
        check(python_fallback(err2) && strict_json_depth(json).has_value(), "loads_gets_json", [&] {
          return "input: " + show(input) + "\nrepaired: " + show(json) + "\nsimdjson: " + simdjson::error_message(err2);
        });
      }
    }
  }

  check_content(input);
  const std::string_view rest = llm::strip_think_block(input);
  check(llmbridge::fuzz::within(rest, input), "think_block_view_within_content", [&] { return "input: " + show(input); });
  return 0;
}
