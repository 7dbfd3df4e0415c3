"""The book's in-browser explorer: orchard-tiny SAM2 and SAM3 exported to ONNX for
onnxruntime-web, with the contract (``manifest.json``) a page needs to drive them.

`ensure_explorer` exports once per checkpoint and returns the folder; `OnnxExplorer` drives the
exported graphs from Python exactly as the page does; `samgap_lib.explorer.reference` holds the
page's steps between the graphs in numpy, and `samgap_lib.explorer.tokenizer` its tokenizer;
`explorer_block` is the HTML a page displays where the explorer goes (``static/explorer.js``
makes it live in the built book) and `install_static` puts the files into the book.
"""

from .export import FORMAT, GRAPHS, OPSET, TOLERANCE, ensure_explorer, explorer_folder, explorer_key
from .page import explorer_block, install_static
from .runtime import OnnxExplorer

__all__ = [
    "FORMAT",
    "GRAPHS",
    "OPSET",
    "TOLERANCE",
    "OnnxExplorer",
    "ensure_explorer",
    "explorer_block",
    "explorer_folder",
    "explorer_key",
    "install_static",
]
