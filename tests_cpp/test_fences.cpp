// Fence stripping: the surrounding-fence law, block choice, unfenced text.
#include <catch2/catch.hpp>

#include <string>

#include "llmbridge/text/fences.hpp"

using llmbridge::text::has_markdown_fence;
using llmbridge::text::strip_markdown_fences;

TEST_CASE("fences: surrounding fence returns the middle verbatim", "[fences]") {
  for (std::string s : {"", "{}", "{\"a\": 1}", "```", "a\n```\nb", "```json\n{}\n```", "\n", "\r",
                        "x```", "~~~", "{\"code\": \"```py\\nprint(1)\\n```\"}", "\n\n```\n"}) {
    for (std::string tag : {"json", "JSON", "jsonc", "", "javascript"}) {
      const std::string text = "```" + tag + "\n" + s + "\n```";
      CHECK(std::string(strip_markdown_fences(text)) == s);
    }
  }
  CHECK(std::string(strip_markdown_fences("~~~json\n{\"a\":1}\n~~~")) == "{\"a\":1}");
}

TEST_CASE("fences: prose around a block is ignored", "[fences]") {
  CHECK(std::string(strip_markdown_fences("Sure! Here it is:\n```json\n{\"a\": 1}\n```\nLet me know.")) ==
        "{\"a\": 1}");
  CHECK(std::string(strip_markdown_fences("Text\n```\n[1, 2]\n```")) == "[1, 2]");
}

TEST_CASE("fences: the first block holding JSON wins", "[fences]") {
  const std::string t = "Run:\n```bash\nls -l\n```\nThen:\n```json\n{\"ok\": true}\n```\n```json\n{\"second\": 1}\n```";
  CHECK(std::string(strip_markdown_fences(t)) == "{\"ok\": true}");
  CHECK(std::string(strip_markdown_fences("a\n```py\nprint(1)\n```\nb")) == "print(1)");
}

TEST_CASE("fences: unclosed and glued fences", "[fences]") {
  CHECK(std::string(strip_markdown_fences("```json\n{\"a\": [1, 2")) == "{\"a\": [1, 2");
  CHECK(std::string(strip_markdown_fences("Result:\n```json\n{\"a\": 1}```")) == "{\"a\": 1}");
  CHECK(std::string(strip_markdown_fences("```json {\"a\": 1}```")) == " {\"a\": 1}");
}

TEST_CASE("fences: unfenced text is unchanged", "[fences]") {
  for (std::string s : {"", "{\"a\": 1}", "plain prose", "two `ticks` only", "``not a fence``"}) {
    CHECK(std::string(strip_markdown_fences(s)) == s);
    CHECK_FALSE(has_markdown_fence(s));
  }
  CHECK(has_markdown_fence("```json\n{}\n```"));
}
