"""Vision: llmbridge.Image (sniffing, explicit MIME, size limits, from_path, from_url),
images in chat messages (data URLs for OpenAI/vLLM, bare base64 `images` for Ollama),
caption() / caption_sync() and supports_vision() / supports_vision_sync(), against the
mock server."""

from __future__ import annotations

import base64
from typing import Any

import llmbridge
import llmbridge._image
import pytest
from generation_helpers import MODES, PROVIDERS, invoke, is_ollama, make_client
from llmbridge import Image, OllamaClient, VLLMClient
from llmbridge.testing import MockLLMServer, Reply
from llmbridge.testing._media import caption_for

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 3
JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF\x00" + bytes(range(200))
GIF87 = b"GIF87a" + b"\x01\x00\x01\x00" + b"\x00" * 30
GIF89 = b"GIF89a" + b"\x01\x00\x01\x00" + b"\xff" * 30
WEBP = b"RIFF" + (100).to_bytes(4, "little") + b"WEBPVP8 " + b"\x11" * 100
VISION = "vis-model"

OPENAI_DIALECT = [PROVIDERS[0], PROVIDERS[1]]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{b64(data)}"


@pytest.fixture
def server() -> Any:
    with MockLLMServer(vision_models=[VISION]) as s:
        yield s


# ---------------------------------------------------------------- Image


@pytest.mark.parametrize(
    "data, mime",
    [
        (PNG, "image/png"),
        (JPEG, "image/jpeg"),
        (GIF87, "image/gif"),
        (GIF89, "image/gif"),
        (WEBP, "image/webp"),
    ],
)
def test_from_bytes_sniffs_the_type(data: bytes, mime: str) -> None:
    image = Image.from_bytes(data)
    assert image.mime == mime
    assert image.size == len(data)
    assert image.url == data_url(data, mime)
    assert image.to_part() == {"type": "image_url", "image_url": {"url": image.url}}
    assert Image.from_bytes(bytearray(data)).url == image.url
    assert Image.from_bytes(memoryview(data)).url == image.url


@pytest.mark.parametrize(
    "data", [b"hello, not an image", b"BM" + b"\x00" * 40, b"RIFF\x00\x00\x00\x00WAVE", b"\x89PN"]
)
def test_unknown_bytes_without_mime_are_refused(data: bytes) -> None:
    with pytest.raises(ValueError, match="mime"):
        Image.from_bytes(data)


def test_explicit_mime() -> None:
    image = Image.from_bytes(b"BM" + b"\x00" * 40, mime="image/bmp")
    assert image.mime == "image/bmp"
    assert image.url.startswith("data:image/bmp;base64,")
    # given beats sniffed
    assert Image.from_bytes(PNG, mime="image/x-custom").mime == "image/x-custom"


@pytest.mark.parametrize("mime", ["text/plain", "png", "", 5])
def test_a_non_image_mime_is_refused(mime: Any) -> None:
    with pytest.raises(ValueError, match="mime"):
        Image.from_bytes(PNG, mime=mime)


def test_empty_and_wrong_types() -> None:
    with pytest.raises(ValueError, match="empty"):
        Image.from_bytes(b"")
    with pytest.raises(TypeError):
        Image.from_bytes("not bytes")  # type: ignore[arg-type]


def test_size_limit_of_from_bytes() -> None:
    assert Image.from_bytes(PNG, max_bytes=len(PNG)).size == len(PNG)
    with pytest.raises(ValueError, match=str(len(PNG))):
        Image.from_bytes(PNG, max_bytes=len(PNG) - 1)


def test_default_size_limit() -> None:
    assert llmbridge._image.MAX_IMAGE_BYTES == 20 << 20
    big = PNG + b"\x00" * ((20 << 20) + 1 - len(PNG))
    with pytest.raises(ValueError, match=str(len(big))):
        Image.from_bytes(big)


def test_from_path(tmp_path: Any) -> None:
    path = tmp_path / "pic.png"
    path.write_bytes(PNG)
    image = Image.from_path(path)
    assert image.mime == "image/png" and image.size == len(PNG)
    assert image.url == data_url(PNG, "image/png")
    assert Image.from_path(str(path)).url == image.url
    other = tmp_path / "pic.bin"
    other.write_bytes(b"BM" + b"\x00" * 10)
    assert Image.from_path(other, mime="image/bmp").mime == "image/bmp"
    with pytest.raises(ValueError):
        Image.from_path(other)
    with pytest.raises(FileNotFoundError):
        Image.from_path(tmp_path / "missing.png")


def test_from_path_over_the_limit_is_refused_before_reading(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "huge.png"
    with open(path, "wb") as f:
        f.write(PNG[:8])
        f.truncate(1 << 30)  # sparse: 1 GiB on paper

    def no_open(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the file was opened")

    monkeypatch.setattr(llmbridge._image, "open", no_open, raising=False)
    with pytest.raises(ValueError, match=str(1 << 30)):
        Image.from_path(path)
    small = tmp_path / "small.png"
    small.write_bytes(PNG)
    with pytest.raises(ValueError, match=str(len(PNG))):
        Image.from_path(small, max_bytes=100)


@pytest.mark.parametrize(
    "url",
    ["http://example.com/a.png", "https://example.com/a.jpg", "data:image/png;base64," + b64(PNG)],
)
def test_from_url_accepted_schemes(url: str) -> None:
    image = Image.from_url(url)
    assert image.url == url
    assert image.to_part() == {"type": "image_url", "image_url": {"url": url}}


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/a.png",
        "file:///etc/passwd",
        "data:text/plain;base64,aGk=",
        "example.com/a.png",
        "",
        42,
    ],
)
def test_from_url_refused(url: Any) -> None:
    with pytest.raises(ValueError):
        Image.from_url(url)


# ---------------------------------------------------------------- images in chat


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_chat_sends_a_data_url(server: MockLLMServer, cls: type, mode: str) -> None:
    image = Image.from_bytes(PNG)
    messages = [{"role": "user", "content": ["What is this?", image]}]
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", messages)
    assert r.success, r.error
    sent = server.last_request.json["messages"]
    assert sent == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": data_url(PNG, "image/png")}},
            ],
        }
    ]
    assert r.text == caption_for([data_url(PNG, "image/png")])


@pytest.mark.parametrize("mode", MODES)
def test_chat_sends_bare_base64_to_ollama(server: MockLLMServer, mode: str) -> None:
    messages = [
        {"role": "system", "content": "be brief"},
        {
            "role": "user",
            "content": [
                "What is this?",
                Image.from_bytes(JPEG),
                {"type": "text", "text": "and this?"},
                Image.from_bytes(PNG),
            ],
        },
    ]
    with make_client(server, OllamaClient) as client:
        r = invoke(client, mode, "chat", messages)
    assert r.success, r.error
    req = server.last_request
    assert req.path == "/api/chat"
    sent = req.json["messages"]
    assert sent[0] == {"role": "system", "content": "be brief"}
    assert sent[1]["role"] == "user"
    assert sent[1]["content"] == "What is this?\nand this?"
    assert sent[1]["images"] == [b64(JPEG), b64(PNG)]
    assert r.text == caption_for([b64(JPEG), b64(PNG)])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_bare_strings_in_a_content_list_become_text_parts(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    messages = [{"role": "user", "content": ["one", {"type": "text", "text": "two"}, "three"]}]
    with make_client(server, cls) as client:
        r = invoke(client, mode, "chat", messages)
    assert r.success, r.error
    content = server.last_request.json["messages"][0]["content"]
    if is_ollama(cls):
        assert content == "one\ntwo\nthree"
    else:
        assert content == [{"type": "text", "text": t} for t in ("one", "two", "three")]


@pytest.mark.parametrize("mode", MODES)
def test_chat_image_url_goes_to_vllm_as_is(server: MockLLMServer, mode: str) -> None:
    url = "https://example.com/cat.png"
    with make_client(server, VLLMClient) as client:
        r = invoke(client, mode, "chat", [{"role": "user", "content": [Image.from_url(url)]}])
    assert r.success, r.error
    assert server.last_request.json["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": url}}
    ]
    assert r.text == caption_for([url])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("method", ["chat", "chat_stream"])
def test_ollama_refuses_an_image_url_with_nothing_sent(
    server: MockLLMServer, mode: str, method: str
) -> None:
    messages = [{"role": "user", "content": ["look", Image.from_url("https://example.com/a.png")]}]
    with make_client(server, OllamaClient) as client:
        with pytest.raises(ValueError, match="ollama"):
            invoke(client, mode, method, messages)
        with pytest.raises(ValueError, match="ollama"):
            invoke(
                client, mode, "caption", Image.from_url("https://example.com/a.png"), model=VISION
            )
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
def test_chat_stream_carries_images(server: MockLLMServer, mode: str) -> None:
    with make_client(server, OllamaClient) as client:
        events = invoke(
            client,
            mode,
            "chat_stream",
            [{"role": "user", "content": ["hm", Image.from_bytes(GIF89)]}],
        )
    assert type(events[-1]) is llmbridge.StreamEnd, events[-1]
    assert server.last_request.json["messages"][0]["images"] == [b64(GIF89)]
    text = "".join(e.text for e in events if type(e) is llmbridge.Token)
    assert text == caption_for([b64(GIF89)])


# ---------------------------------------------------------------- caption


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_caption_with_the_configured_vision_model(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls, vision_model=VISION) as client:
        r = invoke(client, mode, "caption", Image.from_bytes(WEBP))
    assert r.success, r.error
    assert r.text == caption_for([data_url(WEBP, "image/webp")])
    assert f"image/webp, {len(WEBP)} bytes" in r.text
    req = server.last_request
    assert req.json["model"] == VISION
    content = req.json["messages"][0]["content"]
    assert content[0] == {"type": "text", "text": "Describe this image."}
    assert content[1] == {"type": "image_url", "image_url": {"url": data_url(WEBP, "image/webp")}}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_caption_of_bytes_and_path_with_a_prompt(
    server: MockLLMServer, cls: type, mode: str, tmp_path: Any
) -> None:
    path = tmp_path / "p.jpg"
    path.write_bytes(JPEG)
    with make_client(server, cls, vision_model=VISION) as client:
        r1 = invoke(client, mode, "caption", JPEG, prompt="What colour?")
        assert server.last_request.json["messages"][0]["content"][0]["text"] == "What colour?"
        r2 = invoke(client, mode, "caption", str(path))
        r3 = invoke(client, mode, "caption", path)
    expected = caption_for([data_url(JPEG, "image/jpeg")])
    assert r1.text == r2.text == r3.text == expected
    assert f"image/jpeg, {len(JPEG)} bytes" in expected


@pytest.mark.parametrize("mode", MODES)
def test_caption_on_ollama_sends_bare_base64(server: MockLLMServer, mode: str) -> None:
    with make_client(server, OllamaClient) as client:
        r = invoke(client, mode, "caption", Image.from_bytes(PNG), model=VISION)
    assert r.success, r.error
    req = server.last_request
    assert req.path == "/api/chat"
    assert req.json["model"] == VISION
    assert req.json["messages"][0]["images"] == [b64(PNG)]
    assert req.json["messages"][0]["content"] == "Describe this image."
    assert r.text == caption_for([b64(PNG)])
    assert f"image/png, {len(PNG)} bytes" in r.text


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_caption_without_a_vision_model(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls) as client:
        r = invoke(client, mode, "caption", Image.from_bytes(PNG))
    assert not r.success
    assert r.error.startswith("vision_unavailable:"), r.error
    assert r.provider == client.provider
    with pytest.raises(llmbridge.LLMCallError, match="vision_unavailable"):
        r.raise_for_error()
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_caption_model_overrides(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, vision_model=VISION) as client:
        r = invoke(client, mode, "caption", Image.from_bytes(PNG), model="other-vision")
    assert r.success, r.error
    assert server.last_request.json["model"] == "other-vision"


@pytest.mark.parametrize("mode", MODES)
def test_caption_returns_server_errors_as_results(server: MockLLMServer, mode: str) -> None:
    server.enqueue(Reply.error(400, "model does not support images"))
    with make_client(server, VLLMClient, vision_model=VISION, max_retries=0) as client:
        r = invoke(client, mode, "caption", Image.from_bytes(PNG))
    assert not r.success
    assert r.error.startswith("http_400"), r.error


@pytest.mark.parametrize("mode", MODES)
def test_caption_bad_image_argument(server: MockLLMServer, mode: str) -> None:
    with make_client(server, VLLMClient, vision_model=VISION) as client:
        with pytest.raises(TypeError):
            invoke(client, mode, "caption", 12345)
        with pytest.raises(ValueError):
            invoke(client, mode, "caption", b"not an image")
    assert server.request_count == 0


# ---------------------------------------------------------------- supports_vision


def vision(client: Any, mode: str, *args: Any) -> bool:
    return invoke(client, mode, "supports_vision", *args)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_supports_vision_when_served(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, vision_model=VISION) as client:
        assert vision(client, mode) is True


@pytest.mark.parametrize("mode", MODES)
def test_supports_vision_ollama_with_a_model(server: MockLLMServer, mode: str) -> None:
    with make_client(server, OllamaClient) as client:
        assert vision(client, mode) is False  # nothing configured
        assert server.request_count == 0
        assert vision(client, mode, VISION) is True
        assert vision(client, mode, "not-served") is False


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", PROVIDERS)
def test_supports_vision_false_when_not_configured(
    server: MockLLMServer, cls: type, mode: str
) -> None:
    with make_client(server, cls) as client:
        assert vision(client, mode) is False
    assert server.request_count == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_supports_vision_false_when_configured_but_not_served(cls: type, mode: str) -> None:
    with MockLLMServer() as server, make_client(server, cls, vision_model=VISION) as client:
        assert vision(client, mode) is False
        assert server.request_count >= 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("cls", OPENAI_DIALECT)
def test_supports_vision_is_cached(server: MockLLMServer, cls: type, mode: str) -> None:
    with make_client(server, cls, vision_model=VISION) as client:
        client.health_ttl = 3600.0
        assert vision(client, mode) is True
        count = server.request_count
        assert count >= 1
        assert vision(client, mode) is True
        assert server.request_count == count
        # a negative answer is cached too (another model: a new look-up, then cached)
        assert vision(client, mode, "absent") is False
        count = server.request_count
        assert vision(client, mode, "absent") is False
        assert server.request_count == count
        # ttl 0: every call asks again
        client.health_ttl = 0.0
        vision(client, mode, "absent")
        assert server.request_count > count


@pytest.mark.parametrize("mode", MODES)
def test_supports_vision_unreachable_server_is_false(mode: str) -> None:
    from generation_helpers import free_closed_port

    url = f"http://127.0.0.1:{free_closed_port()}/v1"
    with make_client(url, VLLMClient, vision_model=VISION, max_retries=0, timeout=2.0) as client:
        assert vision(client, mode) is False
