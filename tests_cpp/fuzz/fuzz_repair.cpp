// libFuzzer target for text::repair_json: any bytes either give a reasoned error or
// valid JSON (UTF-8, the project's check and an independent RFC 8259 one) that
// repairs to itself; valid JSON comes back as it was; the options only change speed.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llmbridge/text/json_parse.hpp"
#include "llmbridge/text/repair.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using llmbridge::fuzz::strict_json_depth;
using namespace llmbridge::text;

namespace {

// A small limit makes the depth error reachable by short inputs.
constexpr std::size_t kSmallDepth = 16;

std::string describe(std::string_view input, const RepairResult& r, const char* options = "default options") {
  std::string d = "input:  " + show(input) + "\n" + options + ": ok=" + std::to_string(r.ok) +
                  " unchanged=" + std::to_string(r.unchanged) + " truncated=" + std::to_string(r.truncated);
  if (r.ok) d += "\noutput: " + show(r.text(input));
  else d += "\nerror: " + r.error + " at " + std::to_string(r.error_position);
  return d;
}

void check_result(std::string_view input, const RepairResult& r, std::size_t max_depth, const char* options) {
  auto why = [&] { return describe(input, r, options); };
  if (!r.ok) {
    check(!r.error.empty(), "error_has_reason", why);
    check(r.error_position <= input.size(), "error_position_in_input", why);
    check(r.json.empty() && !r.unchanged, "error_has_no_output", why);
    return;
  }
  check(r.error.empty(), "success_has_no_error", why);
  check(!r.unchanged || (r.json.empty() && r.repairs.empty()), "unchanged_has_no_repairs", why);
  for (const Repair& rep : r.repairs)
    check(rep.position <= input.size(), "repair_position_in_input", [&] {
      return why() + "\nrepair " + to_string(rep.kind) + " at " + std::to_string(rep.position);
    });
  const std::string_view out = r.text(input);
  check(llmbridge::fuzz::valid_utf8(out), "output_is_utf8", why);
  check(is_valid_json(out), "output_is_valid_json", why);
  const auto depth = strict_json_depth(out);
  check(depth.has_value(), "output_is_rfc8259_json", why);
  // RepairOptions::max_depth: "Deeper nesting is an error".
  check(!depth || *depth <= max_depth, "max_depth_respected", why);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  const RepairResult r = repair_json(input);
  check_result(input, r, kMaxDepth, "default options");

  // Valid JSON is left as it stands, including what simdjson refuses (64-bit overflow,
  // huge exponents, lone surrogate escapes): the header promises RFC 8259, not simdjson.
  const auto in_depth = strict_json_depth(input);
  if (in_depth && *in_depth <= kMaxDepth)
    check(r.ok && r.unchanged, "valid_json_unchanged", [&] { return describe(input, r); });

  if (r.ok) {
    // Idempotent: the output is its own repair.
    const std::string out(r.text(input));
    const RepairResult again = repair_json(out);
    check(again.ok && again.text(out) == out, "idempotent", [&] {
      return describe(input, r) + "\nsecond pass: " + describe(out, again);
    });
  }

  // The options change cost, never the answer.
  RepairOptions quiet;
  quiet.collect_repairs = false;
  quiet.try_fast_path = false;
  const RepairResult q = repair_json(input, quiet);
  check_result(input, q, kMaxDepth, "collect_repairs=false try_fast_path=false");
  const bool same = r.ok ? q.text(input) == r.text(input) : q.error == r.error;
  check(q.ok == r.ok && same && q.truncated == r.truncated,
        "options_do_not_change_result",
        [&] { return describe(input, r) + "\n" + describe(input, q, "collect_repairs=false try_fast_path=false"); });

  if (!r.ok && !q.ok)
    check(q.error_position == r.error_position, "error_position_same_across_options", [&] {
      return describe(input, r) + "\n" + describe(input, q, "collect_repairs=false try_fast_path=false");
    });

  RepairOptions shallow;
  shallow.max_depth = kSmallDepth;
  const RepairResult s = repair_json(input, shallow);
  check_result(input, s, kSmallDepth, "max_depth=16");
  return 0;
}
