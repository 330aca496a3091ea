"""The Bicep under deployment/, parsed offline, and a small evaluator for the values tests check.

`pycep` (the parser checkov uses) turns each file into plain data. In that data an identifier and
a string literal look alike, so `Scope.evaluate` treats a string as a reference when it names a
parameter, variable, resource or module of the template, and as a literal otherwise. It follows
parameters into modules and module outputs back out, variables, resource names, `${name}`
interpolation, `*`, `? :` and a few functions; anything known only in Azure (resource properties
such as endpoints, `tenant()`, `uniqueString()`) is `Unresolved`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, cast

from pycep import BicepParser

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = ROOT / "deployment"
MAIN = "main.bicep"
PARAMETERS_FILE = DEPLOYMENT / "main.parameters.json"

_INTERPOLATION = re.compile(r"\$\{([^}]*)\}")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Unresolved(Exception):
    """The value is only known once Azure deploys it (or the evaluator does not model it)."""


@dataclass(frozen=True)
class Resource:
    template: Template
    symbol: str
    type: str
    api_version: str
    existing: bool
    config: dict[str, Any]
    condition: Any = None

    @property
    def properties(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.config.get("properties", {}))


@dataclass(frozen=True)
class Template:
    """One parsed .bicep file; `name` is its path under deployment/."""

    name: str
    text: str
    parsed: dict[str, Any] = field(repr=False)

    def section(self, key: str) -> dict[str, Any]:
        return cast(dict[str, Any], self.parsed.get(key) or {})

    @property
    def parameters(self) -> dict[str, Any]:
        return self.section("parameters")

    @property
    def variables(self) -> dict[str, Any]:
        return self.section("variables")

    @property
    def modules(self) -> dict[str, Any]:
        return self.section("modules")

    @property
    def outputs(self) -> dict[str, Any]:
        return self.section("outputs")

    def resources(self) -> list[Resource]:
        found = []
        for symbol, raw in self.section("resources").items():
            body = raw["config"]
            # A conditional resource (`= if (...) {...}`) nests its body one level deeper.
            conditional = "config" in body
            condition = body.get("condition") if conditional else None
            config = body["config"] if conditional else body
            found.append(
                Resource(
                    template=self,
                    symbol=symbol,
                    type=raw["type"],
                    api_version=raw["api_version"],
                    existing=bool(raw.get("existing")),
                    config=config,
                    condition=condition,
                )
            )
        return found

    def resource(self, type_: str) -> Resource:
        """The one resource of this type that the template creates."""
        matches = [r for r in self.resources() if r.type == type_ and not r.existing]
        assert len(matches) == 1, f"{self.name}: expected one {type_}, found {len(matches)}"
        return matches[0]

    def symbols(self) -> set[str]:
        return {
            *self.parameters,
            *self.variables,
            *self.section("resources"),
            *self.modules,
        }

    def code(self) -> str:
        """The source without comments, for textual checks."""
        return "\n".join(line.split("//", 1)[0] for line in self.text.splitlines())


def parse(path: Path) -> Template:
    parsed = BicepParser().parse(file_path=path)
    return Template(
        name=path.relative_to(DEPLOYMENT).as_posix(),
        text=path.read_text(encoding="utf-8"),
        parsed=cast(dict[str, Any], parsed),
    )


@cache
def templates() -> dict[str, Template]:
    """Every .bicep file under deployment/, by path (main.bicep, modules/cosmos.bicep, ...)."""
    found = {}
    for path in sorted(DEPLOYMENT.rglob("*.bicep")):
        template = parse(path)
        found[template.name] = template
    return found


def all_resources() -> list[Resource]:
    return [r for t in templates().values() for r in t.resources()]


def module_template(caller: Template, symbol: str) -> Template:
    module = caller.modules[symbol]
    assert module["type"] == "local", f"{caller.name}: module {symbol} is not a local file"
    path = (DEPLOYMENT / caller.name).parent / module["detail"]["path"]
    return templates()[path.resolve().relative_to(DEPLOYMENT).as_posix()]


def parameter_file_values() -> dict[str, Any]:
    document = json.loads(PARAMETERS_FILE.read_text(encoding="utf-8"))
    return {name: entry["value"] for name, entry in document["parameters"].items()}


def dotted(expression: Any) -> str | None:
    """`a.b.c` for a chain of property accesses on an identifier, else None."""
    if isinstance(expression, str):
        return expression
    if isinstance(expression, dict) and "operator" in expression:
        operator = expression["operator"]
        if operator["type"] == "property_accessor":
            left = dotted(operator["operands"]["operand_1"])
            right = dotted(operator["operands"]["operand_2"])
            if left is not None and right is not None:
                return f"{left}.{right}"
    return None


def walk(node: Any) -> Iterator[Any]:
    """Every value nested in parsed data, the node itself first."""
    yield node
    if isinstance(node, dict):
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def function_names(node: Any) -> set[str]:
    """Every function called in an expression, including `x.listKeys()` style calls."""
    names = set()
    for item in walk(node):
        if isinstance(item, dict):
            if "function" in item and isinstance(item["function"], dict):
                names.add(str(item["function"].get("type", "")))
            operator = item.get("operator")
            if isinstance(operator, dict) and operator.get("type") == "function_accessor":
                names.add(str(operator["operands"].get("func_name", "")))
    return names


@dataclass(frozen=True)
class Scope:
    """Values of one template's parameters: arguments given to it, else their defaults."""

    template: Template
    arguments: Mapping[str, Callable[[], Any]]

    def value_of(self, name: str) -> Any:
        if name in self.arguments:
            return self.arguments[name]()
        if name in self.template.parameters:
            default = self.template.parameters[name].get("default")
            if default is None:
                raise Unresolved(f"{self.template.name}: parameter {name} has no value")
            return self.evaluate(default)
        if name in self.template.variables:
            return self.evaluate(self.template.variables[name]["value"])
        raise Unresolved(f"{self.template.name}: {name} is a resource or module")

    def evaluate(self, expression: Any) -> Any:
        if expression is None or isinstance(expression, bool | int | float):
            return expression
        if isinstance(expression, str):
            return self._string(expression)
        if isinstance(expression, list):
            return [self.evaluate(item) for item in expression]
        if isinstance(expression, dict):
            if "operator" in expression:
                return self._operator(expression["operator"])
            if "function" in expression:
                return self._function(expression["function"])
            return {key: self.evaluate(value) for key, value in expression.items()}
        raise Unresolved(f"cannot evaluate {expression!r}")

    def module(self, symbol: str) -> Scope:
        """The scope of a module this template calls, with the arguments it passes."""
        call = self.template.modules[symbol]["config"].get("params", {})
        arguments = {
            name: (lambda value=value: self.evaluate(value)) for name, value in call.items()
        }
        return Scope(module_template(self.template, symbol), arguments)

    def _string(self, text: str) -> Any:
        if text in self.template.symbols():
            return self.value_of(text)

        def substitute(match: re.Match[str]) -> str:
            inner = match.group(1).strip()
            if not _IDENTIFIER.fullmatch(inner):
                raise Unresolved(f"interpolation ${{{inner}}}")
            return str(self.value_of(inner))

        return _INTERPOLATION.sub(substitute, text)

    def _operator(self, operator: dict[str, Any]) -> Any:
        kind, operands = operator["type"], operator["operands"]
        if kind == "property_accessor":
            return self._property({"operator": operator})
        if kind == "conditional":
            chosen = "true_value" if self.evaluate(operands["condition"]) else "false_value"
            return self.evaluate(operands[chosen])
        if kind == "multiply":
            return self.evaluate(operands["operand_1"]) * self.evaluate(operands["operand_2"])
        raise Unresolved(f"operator {kind}")

    def _property(self, expression: Any) -> Any:
        """`module.outputs.name` (followed into the module) and `resource.name`."""
        chain = dotted(expression)
        parts = chain.split(".") if chain else []
        if len(parts) == 3 and parts[0] in self.template.modules and parts[1] == "outputs":
            module = self.module(parts[0])
            return module.evaluate(module.template.outputs[parts[2]]["value"])
        resources = self.template.section("resources")
        if len(parts) == 2 and parts[0] in resources and parts[1] == "name":
            resource = next(r for r in self.template.resources() if r.symbol == parts[0])
            return self.evaluate(resource.config["name"])
        raise Unresolved(f"{self.template.name}: {chain or expression!r} is known only in Azure")

    def _function(self, function: dict[str, Any]) -> Any:
        kind = function["type"]
        arguments = [self.evaluate(a) for a in (function.get("parameters") or {}).values()]
        if kind == "string":
            (value,) = arguments
            return str(value).lower() if isinstance(value, bool) else str(value)
        if kind == "empty":
            (value,) = arguments
            return not value
        if kind == "concat":
            return [item for argument in arguments for item in argument]
        if kind == "union":
            merged: dict[str, Any] = {}
            for argument in arguments:
                merged.update(argument)
            return merged
        raise Unresolved(f"function {kind}()")


def main_scope(**overrides: Any) -> Scope:
    """main.bicep as deploy.sh deploys it: the parameters file, plus a name prefix."""
    values = {"namePrefix": "memorybot", **parameter_file_values(), **overrides}
    arguments = {name: (lambda value=value: value) for name, value in values.items()}
    return Scope(templates()[MAIN], arguments)


def module_symbol(template: Template, module_path: str) -> str:
    """The symbol under which `template` calls the module file `module_path`."""
    matches = [
        symbol
        for symbol in template.modules
        if module_template(template, symbol).name == module_path
    ]
    assert len(matches) == 1, f"{template.name} calls {module_path} {len(matches)} times"
    return matches[0]


def app_setting_expressions(template: Template) -> dict[str, Any]:
    """Every app setting the web app may get (both sides of any `? :`), name to value."""
    site = template.resource("Microsoft.Web/sites")
    found: dict[str, Any] = {}

    def collect(expression: Any) -> None:
        if isinstance(expression, str) and expression in template.variables:
            collect(template.variables[expression]["value"])
        elif isinstance(expression, list):
            for item in expression:
                assert isinstance(item, dict), item
                assert set(item) == {"name", "value"}, item
                name = item["name"]
                assert isinstance(name, str), name
                assert name not in template.symbols(), f"app setting name {name} is not literal"
                found[name] = item["value"]
        elif isinstance(expression, dict) and "function" in expression:
            assert expression["function"]["type"] == "concat", expression
            for argument in expression["function"]["parameters"].values():
                collect(argument)
        elif isinstance(expression, dict) and "operator" in expression:
            operator = expression["operator"]
            assert operator["type"] == "conditional", expression
            collect(operator["operands"]["true_value"])
            collect(operator["operands"]["false_value"])
        else:
            raise AssertionError(f"{template.name}: unexpected app settings {expression!r}")

    collect(site.properties["siteConfig"]["appSettings"])
    return found
