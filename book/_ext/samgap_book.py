"""Sphinx glue for the samgap book (loaded through _config.yml `local_extensions`).

* Drop repeated <script> entries: Jupyter Book 1.0.4 registers sphinx-thebe's inline
  configuration script twice, so `const THEBE_JS_URL` is declared twice and every page logs a
  SyntaxError in the browser console.
"""


def _dedupe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attrs = getattr(js, "attributes", {}) or {}
        # inline scripts are registered with filename None by some extensions and "" by others
        name = getattr(js, "filename", str(js)) or None
        key = (name, tuple(sorted((k, str(v)) for k, v in attrs.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept


def setup(app):
    # early: html-page-context is emitted with emit_firstresult, so a later handler may not run
    app.connect("html-page-context", _dedupe_scripts, priority=999)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
