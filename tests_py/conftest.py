from __future__ import annotations

# --- hypothesis profile (owned by the text tests) -------------------------------
# "ci": no per-example deadline (the 2-core CI box is shared with compilers), and a
# bounded example count so the property files stay well under a minute.
from hypothesis import settings

settings.register_profile("ci", deadline=None, max_examples=200, print_blob=True)
settings.load_profile("ci")
# --- end hypothesis profile ----------------------------------------------------

# Real-server tier fixtures: llama_server, llama_server_auth (tests_py/real_llama.py) and
# vllm_server, vllm_server_auth (tests_py/real_vllm.py).
pytest_plugins = ["real_llama", "real_vllm"]
