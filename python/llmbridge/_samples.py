"""Real-looking model answers, as LLMs emit them: the demo's bundled sample."""

from __future__ import annotations

SAMPLES: tuple[tuple[str, str], ...] = (
    ("fenced answer", '```json\n{"invoice_number": "INV-2041", "total": 1249.50, "currency": "EUR"}\n```'),
    ("prose around the JSON",
     'Sure! Here is the extracted data:\n{"vendor": "Café Zürich GmbH", "items": 3}\nLet me know if you need anything else.'),
    ("Python literals and single quotes",
     "{'paid': True, 'discount': None, 'notes': 'it\\'s net 30'}"),
    ("trailing commas and comments",
     '{\n  "parties": ["ACME Corp", "Globex",],  // both signatories\n  "term_months": 24,\n}'),
    ("unquoted keys, missing commas",
     '{name: "Jane Roe"\n role: "buyer"\n signed: 2024-03-01}'),
    ("inner quotes and a raw newline",
     '{"summary": "The clause says "net 30" and\nlate fees apply", "pages": 4}'),
    ("cut off by max_tokens",
     '{"line_items": [{"sku": "A-1", "qty": 2}, {"sku": "B-7", "qty": 1}, {"sku": "C-'),
    ("NaN and a <think> block",
     '<think>The total is unclear.</think>\n{"total": NaN, "confidence": 0.4}'),
)
