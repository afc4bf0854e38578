// Images: type sniffing, data URLs, and the rewrite of OpenAI content parts for Ollama.
#include <catch2/catch.hpp>
#include <stdexcept>
#include <string>

#include "llmbridge/llm/images.hpp"
#include "llmbridge/text/base64.hpp"

using namespace llmbridge::llm;

TEST_CASE("images: the type is sniffed from the magic bytes", "[images]") {
  CHECK(sniff_image_mime(std::string("\x89PNG\r\n\x1a\n\x00\x00", 10)) == "image/png");
  CHECK(sniff_image_mime("\xff\xd8\xff\xe0rest") == "image/jpeg");
  CHECK(sniff_image_mime("GIF87a...") == "image/gif");
  CHECK(sniff_image_mime("GIF89a...") == "image/gif");
  CHECK(sniff_image_mime(std::string("RIFF\x10\x00\x00\x00WEBPVP8 ", 16)) == "image/webp");
  CHECK(sniff_image_mime(std::string("RIFF\x10\x00\x00\x00WAVEfmt ", 16)).empty());  // RIFF but audio
  CHECK(sniff_image_mime("").empty());
  CHECK(sniff_image_mime("\x89PN").empty());  // too short
  CHECK(sniff_image_mime("<svg xmlns=").empty());
}

TEST_CASE("images: a data URL holds the bytes in base64", "[images]") {
  const std::string bytes("\x89PNG\r\n\x1a\n\x01\x02\x03", 11);
  const std::string url = image_data_url(bytes, "image/png");
  REQUIRE(url.rfind("data:image/png;base64,", 0) == 0);
  std::string back;
  REQUIRE(llmbridge::text::base64_decode(url.substr(22), back));
  CHECK(back == bytes);
}

TEST_CASE("images: OpenAI content parts become Ollama's content and images", "[images][ollama]") {
  const std::string in =
      R"([{"role":"system","content":"be brief"},)"
      R"({"role":"user","content":[{"type":"text","text":"what is"},)"
      R"({"type":"image_url","image_url":{"url":"data:image/png;base64,AAEC"}},)"
      R"({"type":"text","text":"this?"},{"type":"image_url","image_url":"data:image/gif;base64,R0lG"}]}])";
  CHECK(messages_for_ollama(in) ==
        R"([{"role":"system","content":"be brief"},)"
        R"({"role":"user","content":"what is\nthis?","images":["AAEC","R0lG"]}])");
}

TEST_CASE("images: Ollama refuses image URLs and other part types before anything is sent", "[images][ollama]") {
  CHECK_THROWS_WITH(
      messages_for_ollama(R"([{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}])"),
      Catch::Contains("not URLs"));
  CHECK_THROWS_AS(
      messages_for_ollama(R"([{"role":"user","content":[{"type":"input_audio","input_audio":{"data":"AA"}}]}])"),
      std::invalid_argument);
  // Plain string content and other fields pass through untouched.
  const std::string plain = R"([{"role":"assistant","content":"hi","tool_calls":[]}])";
  CHECK(messages_for_ollama(plain) == plain);
}
