-- Which of an upstream's tools, prompts and resources /mcp offers: JSON
-- {"tools": {"mode": "all|allow|deny", "patterns": [...]}, "prompts": {...}, "resources": {...}}.
-- '{}' offers everything.
ALTER TABLE mcp_servers ADD COLUMN policy TEXT NOT NULL DEFAULT '{}';
