// libFuzzer target for text::strip_markdown_fences: the result is a view inside the
// text, text without a fence comes back as it is, and the surrounding-fence law of
// fences.hpp holds for every string (also for the other fence spellings rule 1 names).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_support.hpp"
#include "llmbridge/text/fences.hpp"

using llmbridge::fuzz::check;
using llmbridge::fuzz::show;
using llmbridge::fuzz::within;
using llmbridge::text::has_markdown_fence;
using llmbridge::text::strip_markdown_fences;

namespace {

struct Fence {
  const char* open;   // the opening line, without its newline
  const char* close;  // the closing fence
  const char* name;   // the invariant name, so each spelling reports on its own
};

// The first is the law as fences.hpp writes it; the others are rule 1's "``` or ~~~,
// any info string".
constexpr Fence kFences[] = {
    {"```json", "```", "fence_law"},
    {"```", "```", "fence_law_no_info"},
    {"~~~json", "~~~", "fence_law_tilde"},
    {"````python", "````", "fence_law_long_run"},
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  const std::string_view out = strip_markdown_fences(text);
  const bool fenced = has_markdown_fence(text);
  auto why = [&] {
    return "text:   " + show(text) + "\nresult: " + show(out) + "\nhas_markdown_fence=" + std::to_string(fenced);
  };
  check(within(out, text), "result_within_text", why);
  // Rule 3, and has_markdown_fence agreeing with what strip does.
  if (!fenced) check(out.data() == text.data() && out.size() == text.size(), "unfenced_text_unchanged", why);
  else check(out.size() < text.size(), "fenced_result_shorter", why);
  if (text.find("```") == std::string_view::npos && text.find("~~~") == std::string_view::npos)
    check(!fenced, "no_fence_run_no_fence", why);

  // Rule 1: strip_markdown_fences(open + "\n" + s + "\n" + close) == s for every s.
  for (const Fence& f : kFences) {
    const std::string wrapped = std::string(f.open) + "\n" + std::string(text) + "\n" + f.close;
    const std::string_view got = strip_markdown_fences(wrapped);
    check(got == text && has_markdown_fence(wrapped), f.name, [&] {
      return "s:       " + show(text) + "\nwrapped: " + show(wrapped) + "\nresult:  " + show(got);
    });
  }
  return 0;
}
