"""The shape of the fake switch: public names only, no import cycles, imports flowing down.

``docs/testing.md`` ("How the fake is built") describes the layers checked here.
"""

from __future__ import annotations

import grimp

TESTING = "genesis_trio.testing"

# Top to bottom; a module may import only from its own layer's later entries or lower layers.
LAYERS = [
    ["_server"],
    ["_outbound_socket", "_connection"],
    ["_commands", "_api"],
    ["_switch"],
    ["_channels", "_apps"],
    ["_channel_session", "_channel_media", "_channel_lifecycle", "_channel_headers"],
    ["_channel_core"],
]


def graph() -> grimp.ImportGraph:
    return grimp.build_graph("genesis_trio")


def fake_modules(imports: grimp.ImportGraph) -> set[str]:
    return {TESTING} | imports.find_descendants(TESTING)


def test_the_fake_imports_only_public_names_of_the_library() -> None:
    imports = graph()
    private = sorted(
        f"{importer} -> {imported}"
        for importer in fake_modules(imports)
        for imported in imports.find_modules_directly_imported_by(importer)
        if imported.startswith("genesis_trio")
        and not imported.startswith(TESTING)
        and any(part.startswith("_") for part in imported.split("."))
    )
    assert private == []


def test_no_import_cycles_in_the_fake() -> None:
    imports = graph()
    modules = sorted(fake_modules(imports) - {TESTING})
    cycles = [
        (first, second)
        for index, first in enumerate(modules)
        for second in modules[index + 1 :]
        if (
            imports.direct_import_exists(importer=first, imported=second, as_packages=False)
            and imports.chain_exists(importer=second, imported=first)
        )
        or (
            imports.direct_import_exists(importer=second, imported=first, as_packages=False)
            and imports.chain_exists(importer=first, imported=second)
        )
    ]
    assert cycles == []


def test_imports_flow_from_the_wire_down_to_the_model() -> None:
    imports = graph()
    order = [name for layer in LAYERS for name in layer]
    upward = sorted(
        f"{low} -> {high}"
        for position, low in enumerate(order)
        for high in order[:position]
        if imports.direct_import_exists(importer=f"{TESTING}.{low}", imported=f"{TESTING}.{high}")
    )
    assert upward == []
