// Markdown code-fence stripping for LLM answers.
#pragma once

#include <string_view>

namespace llmbridge::text {

// Returns the content of the markdown code fence that holds the answer, as a view
// into `text`. Rules, in order:
//  1. If `text` opens with a fence line (``` or ~~~, any info string such as `json`)
//     and ends with a closing fence, the whole middle is returned verbatim, even if
//     it holds backticks or fences itself. So for every s:
//        strip_markdown_fences("```json\n" + s + "\n```") == s
//  2. Otherwise every fenced block in the text is found (prose before, between and
//     after is ignored); the first block whose content starts with `{` or `[` wins,
//     else the first block. An opening fence that is never closed (a truncated
//     answer) runs to the end of the text.
//  3. Text without any fence is returned unchanged.
std::string_view strip_markdown_fences(std::string_view text) noexcept;

// True when strip_markdown_fences(text) would find a fence.
bool has_markdown_fence(std::string_view text) noexcept;

}  // namespace llmbridge::text
