"""``Module``: the container every layer and model is built from (the design of ``torch.nn.Module``).

A module owns *parameters* (trainable tensors) and *child modules*. Assigning one as an attribute
registers it (``self.fc = Linear(4, 2)``), so the module tree can be walked: ``named_parameters()``
yields ``"fc.weight"``, ``"fc.bias"``, … — the dotted names that ``state_dict()`` uses as keys and
that checkpoint files store. ``train()``/``eval()`` set ``.training`` on the whole tree (dropout
reads it). Calling a module runs its ``forward``.
"""
from __future__ import annotations

from collections import OrderedDict

from minitx.tensor import Tensor, data_of


class Parameter(Tensor):
    """A Tensor that a Module registers as trainable (``requires_grad=True`` by default)."""

    def __init__(self, data, requires_grad: bool = True):
        array = data_of(data)
        super().__init__(array, requires_grad=requires_grad, _copy=False)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer: subclasses set attributes in ``__init__`` and define ``forward``."""

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() before setting {name!r}")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name``; ``None`` records an absent optional parameter (e.g. no bias)."""
        if param is None:
            self._parameters.pop(name, None)
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def add_module(self, name: str, module: Module) -> None:
        setattr(self, name, module)

    # ------------------------------------------------------------------ walking the tree
    def named_children(self):
        yield from self._modules.items()

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_modules(self, prefix: str = ""):
        """This module and every descendant, depth first, with dotted names ("" for the root)."""
        stack, seen = [(prefix, self)], set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m) for n, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_parameters(self, prefix: str = ""):
        """(dotted name, Parameter) for every parameter of the tree; a shared (tied) one appears once."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, param in module._parameters.items():
                if id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self):
        for _, param in self.named_parameters():
            yield param

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # ------------------------------------------------------------------ modes and gradients
    def gradient_checkpointing_enable(self) -> None:
        """HF's name: the layer stacks below (modules with a ``gradient_checkpointing`` flag: BERT's encoder,
        GPT-2's blocks) recompute each layer in backward instead of keeping its activations, while training
        (``minitx.autograd.Checkpoint``: less memory, one more forward per step). For the least memory, also
        set MINITX_OUTPUT_CACHE_MB=0: the C++ kernels otherwise keep up to 256 MB of freed outputs for reuse
        (csrc/output_cache.h), resident memory that counts in the peak."""
        self.set_gradient_checkpointing(True)

    def gradient_checkpointing_disable(self) -> None:
        self.set_gradient_checkpointing(False)

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        for module in self.modules():
            if hasattr(module, "gradient_checkpointing"):
                module.gradient_checkpointing = enabled

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and every descendant (dropout is active when training)."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self) -> None:
        for param in self.parameters():
            param.grad = None

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    # ------------------------------------------------------------------ state dict
    def state_dict(self) -> OrderedDict:
        """name -> ndarray (a copy) for every parameter, tied parameters included under each name."""
        state = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                state[f"{module_name}.{name}" if module_name else name] = param.data.copy()
        return state

    def load_state_dict(self, state_dict, strict: bool = True) -> dict:
        """Copy arrays (or Tensors) from ``state_dict`` into the parameters of the same names.

        With ``strict=True`` any missing key, unexpected key or shape mismatch raises a ``KeyError``
        (``ValueError`` for shapes) that lists all of them; with ``strict=False`` the matching keys are
        loaded and ``{"missing_keys": [...], "unexpected_keys": [...]}`` is returned (shape mismatches
        always raise: loading them is never meaningful).
        """
        own = OrderedDict()
        for module_name, module in self.named_modules():
            for name, param in module._parameters.items():
                own[f"{module_name}.{name}" if module_name else name] = param
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = []
        for key, param in own.items():
            if key in state_dict:
                value = state_dict[key]
                shape = tuple(value.shape)
                if shape != param.shape:
                    mismatched.append(f"{key}: checkpoint {shape} vs model {param.shape}")
        if mismatched:
            raise ValueError(f"load_state_dict for {type(self).__name__}: shape mismatch for "
                             + "; ".join(mismatched))
        if strict and (missing or unexpected):
            raise KeyError(f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        for key, param in own.items():
            if key in state_dict:
                value = state_dict[key]
                value = data_of(value)
                param.data[...] = value.astype(param.dtype, copy=False)
        return {"missing_keys": missing, "unexpected_keys": unexpected}

    # ------------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # pragma: no cover - abstract
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules registered under "0", "1", … (so their parameters are found)."""

    def __init__(self, modules=()):
        super().__init__()
        for module in modules:
            self.append(module)

    def append(self, module: Module) -> ModuleList:
        self.add_module(str(len(self._modules)), module)
        return self

    def __getitem__(self, index):
        items = list(self._modules.values())
        return ModuleList(items[index]) if isinstance(index, slice) else items[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class Sequential(ModuleList):
    """Modules applied in order: ``Sequential(a, b)(x) == b(a(x))``."""

    def __init__(self, *modules):
        super().__init__(modules)

    def forward(self, x):
        for module in self:
            x = module(x)
        return x
