"""Check a user's TorchScript network against an allow-list of pure tensor operators before it runs.

A TorchScript file is a program: its ``code/`` members are compiled when the file is loaded and
can call any operator torch registers, including ``aten::from_file`` (which maps a file into a
tensor that writes through to it), ``aten::save`` and the distributed, RPC and profiler ops.
Screening its pickles keeps Python out, but not these. So before gencli calls a network it walks
every graph the network can run: every method of the module and of every submodule, their
forward hooks, and each of these graphs inlined (which pulls in the helper functions and class
methods they call), down through the blocks of ``prim::If`` and ``prim::Loop``. Every node must be
in ``ALLOWED_OPS``; the first one that is not is named in the refusal.

Two things run before any method is called, while ``torch.jit.load`` builds the module, so they
are refused on the archive itself (``load_time_code``): a class's ``__setstate__``, which the
loader calls on the pickled state, and torch's C++ custom classes (``torch.classes``), whose
loading code gencli cannot inspect.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import torch


def _names(namespace: str, text: str, in_place: bool = False) -> frozenset[str]:
    """``namespace::name`` for every word of ``text`` (``#`` starts a comment), and ``name_`` too when in place is allowed."""
    words = [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]
    if in_place:
        words += [w + "_" for w in words]
    return frozenset(f"{namespace}::{w}" for w in words)


# How the allow-list was chosen: the operators that torch.jit.script and torch.jit.trace emit for
# the layers of torch.nn that feature networks and classifiers are built from (convolutions,
# linear maps, normalisation, pooling, resampling, activations, attention, recurrent layers) and
# for the tensor arithmetic, indexing and shape code around them, plus what scripted Python needs
# for its integers, lists, tuples, dicts and strings. Each name was read against torch's operator
# registry (torch._C._jit_get_all_schemas()): none takes a file name or a path, opens, maps, reads
# or writes anything outside the tensors it is given, talks to another process, or records
# profiles. Operators are matched by name, so every overload of a name is allowed with it (for
# example aten::add on tensors, numbers, lists and strings). Left out on purpose, among others:
# aten::from_file, aten::save, aten::_print, prim::Print (stdout carries gencli's --json output),
# the storage and memory-layout tricks (aten::set_, as_strided, _unsafe_*), manual_seed, every
# namespace but aten and prim (c10d, rpc, profiler, quantized, custom ops), prim::PythonOp,
# prim::fork, and calls through interfaces, which the screen cannot follow.

# Element-wise maths and activations: these also come as in-place variants (relu_, add_, ...).
_POINTWISE = _names("aten", """
    add sub rsub mul div true_divide floor_divide remainder fmod neg negative abs absolute sign sgn pow
    float_power sqrt rsqrt square exp exp2 expm1 log log2 log10 log1p sin cos tan asin acos atan atan2
    sinh cosh asinh acosh atanh arcsin arccos arctan arctan2 arcsinh arccosh arctanh erf erfc erfinv
    floor ceil round trunc frac fix reciprocal clamp clamp_min clamp_max clip lerp addcmul addcdiv
    hypot logit nan_to_num xlogy copysign deg2rad rad2deg lgamma digamma sinc heaviside
    multiply subtract divide
    bitwise_and bitwise_or bitwise_xor bitwise_not logical_and logical_or logical_xor logical_not
    eq ne lt le gt ge greater greater_equal less less_equal not_equal
    relu relu6 leaky_relu elu selu celu gelu silu mish hardswish hardsigmoid hardtanh sigmoid tanh
    threshold hardshrink softshrink
    masked_fill index_fill index_add index_copy index_put scatter scatter_add scatter_reduce
    fill zero copy normal uniform bernoulli dropout feature_dropout alpha_dropout feature_alpha_dropout
    squeeze unsqueeze transpose t swapaxes swapdims
""", in_place=True)

_TENSOR = _names("aten", """
    # convolutions and linear maps
    conv1d conv2d conv3d conv_transpose1d conv_transpose2d conv_transpose3d convolution _convolution
    _convolution_mode linear bilinear matmul mm bmm baddbmm addmm addmv addbmm addr mv dot vdot inner
    outer ger einsum tensordot kron chain_matmul linalg_matmul linalg_vecdot
    # activations and their building blocks without an in-place form
    softplus softsign log_sigmoid glu prelu _prelu_kernel softmax log_softmax _softmax _log_softmax
    softmin logsumexp
    # pooling
    max_pool1d max_pool2d max_pool3d max_pool1d_with_indices max_pool2d_with_indices
    max_pool3d_with_indices avg_pool1d avg_pool2d avg_pool3d adaptive_avg_pool1d adaptive_avg_pool2d
    adaptive_avg_pool3d _adaptive_avg_pool2d _adaptive_avg_pool3d adaptive_max_pool1d
    adaptive_max_pool2d adaptive_max_pool3d
    # normalisation
    batch_norm instance_norm layer_norm group_norm rms_norm native_batch_norm native_layer_norm
    native_group_norm _native_batch_norm_legit _native_batch_norm_legit_no_training
    _batch_norm_impl_index normalize renorm norm linalg_vector_norm linalg_norm frobenius_norm
    _weight_norm _weight_norm_interface norm_except_dim
    # resampling and padding
    upsample_nearest1d upsample_nearest2d upsample_nearest3d upsample_linear1d upsample_bilinear2d
    upsample_bicubic2d upsample_trilinear3d _upsample_nearest_exact1d _upsample_nearest_exact2d
    _upsample_nearest_exact3d _upsample_bilinear2d_aa _upsample_bicubic2d_aa _upsample_lanczos2d_aa
    __interpolate __upsample __upsample_nearest __upsample_bilinear grid_sampler grid_sampler_2d
    grid_sampler_3d affine_grid_generator pixel_shuffle pixel_unshuffle channel_shuffle
    native_channel_shuffle pad constant_pad_nd _pad_circular _pad_enum reflection_pad1d
    reflection_pad2d reflection_pad3d replication_pad1d replication_pad2d replication_pad3d
    im2col col2im
    # attention and recurrent layers
    scaled_dot_product_attention _scaled_dot_product_attention_math _native_multi_head_attention
    _transformer_encoder_layer_fwd _transform_bias_rescale_qkv _masked_softmax lstm gru rnn_tanh
    rnn_relu lstm_cell gru_cell rnn_tanh_cell rnn_relu_cell embedding embedding_bag _embedding_bag
    _embedding_bag_forward_only one_hot
    # shapes and views
    view view_as reshape reshape_as _reshape_alias flatten unflatten permute contiguous expand
    expand_as repeat repeat_interleave tile narrow select slice chunk split split_with_sizes unbind
    tensor_split hsplit vsplit dsplit cat concat concatenate stack hstack vstack dstack column_stack
    row_stack flip fliplr flipud roll rot90 movedim moveaxis mT mH numpy_T matrix_H adjoint diag
    diag_embed diagonal diagflat tril triu broadcast_to broadcast_tensors meshgrid unfold alias
    clone detach ravel atleast_1d atleast_2d atleast_3d unsafe_chunk unsafe_split
    # indexing, selection and sorting
    index index_select gather masked_select masked_scatter take take_along_dim where nonzero
    argwhere searchsorted bucketize sort argsort msort topk kthvalue unique_consecutive
    _unique _unique2 unique_dim
    # reductions and statistics
    sum mean std var std_mean var_mean prod max min amax amin aminmax argmax argmin cumsum cumprod
    cummax cummin logcumsumexp all any median nanmedian nanmean nansum count_nonzero quantile
    nanquantile mode histc bincount cdist pdist pairwise_distance cosine_similarity dist
    maximum minimum fmax fmin
    # comparisons and tests
    equal isclose allclose isnan isinf isfinite isposinf isneginf isreal isin signbit
    # creation that reads no file (shapes, constants, ranges, random numbers)
    zeros zeros_like ones ones_like full full_like empty empty_like arange linspace logspace eye
    tensor scalar_tensor as_tensor new_zeros new_ones new_full new_empty new_tensor rand rand_like
    randn randn_like randint randint_like randperm multinomial
    # types, devices and queries
    to type_as _to_copy cpu cuda size sym_size dim numel stride is_contiguous is_floating_point
    is_complex is_signed is_nonzero item _local_scalar_dense element_size result_type can_cast
    promote_types requires_grad_ is_grad_enabled set_grad_enabled is_autocast_enabled
    is_autocast_cpu_enabled get_autocast_dtype is_scripting _shape_as_tensor _infer_size
    _assert_async _assert_scalar _assert_tensor_metadata
""")

# What scripted Python needs for numbers, lists, tuples, dicts and strings (all in memory).
_SCRIPT = _names("aten", """
    Int Float Bool Complex IntImplicit FloatImplicit ScalarImplicit ComplexImplicit Size
    __getitem__ _set_item __contains__ __is__ __isnot__ __not__ __and__ __or__ __xor__ __lshift__
    __rshift__ __iand__ __ior__ __ixor__ __ilshift__ __irshift__ __range_length __derive_index
    __round_to_zero_floordiv floordiv divmod mathremainder len append extend insert pop remove clear
    list reverse count dict keys values items get setdefault update popitem Delete range
    str format percentFormat join startswith endswith lower upper strip lstrip rstrip replace
    find rfind partition rpartition splitlines isdigit isalpha isspace chr ord device warn
    _tensor_to_list _list_to_tensor hash
""")

# The structural nodes of TorchScript graphs (most are not operators and have no schema).
_PRIM = _names("prim", """
    Constant GetAttr SetAttr If Loop ListConstruct ListUnpack TupleConstruct TupleUnpack TupleIndex
    TupleSlice DictConstruct DictIndex RaiseException Uninitialized NumToTensor ImplicitTensorToNum
    unchecked_cast unchecked_unwrap_optional isinstance CreateObject EnumName EnumValue StringIndex
    device dtype layout requires_grad is_cuda is_cpu is_nested is_quantized is_sparse is_sparse_csr
    is_meta is_mkldnn is_mps is_xpu is_xla is_ipu is_maia is_mtia is_vulkan data type shape
    itemsize nbytes min max abs tolist
""")

ALLOWED_OPS: frozenset[str] = _POINTWISE | _TENSOR | _SCRIPT | _PRIM


# Calls to other methods and functions: allowed where they stand, because the same graph is
# also read with every call inlined; a call that inlining cannot resolve (through an interface)
# is refused.
_CALLS = frozenset({"prim::CallMethod", "prim::CallFunction"})
# A with-block calls its context object's __enter__ and __exit__, methods the graph does not show.
_WITH = frozenset({"prim::Enter", "prim::Exit"})


def forbidden_op(module: torch.jit.ScriptModule) -> str | None:
    """Return the first operator ``module`` could run that is not in ``ALLOWED_OPS`` (with where it is), or None.

    Every method and forward hook of the module and of each submodule (the innermost first, so a
    refusal names where the operator is written) is read twice: as compiled, and with its calls
    inlined, so that helper functions and the methods of TorchScript classes are read too.
    """
    for where, graph in _graphs(module):
        kind = _first_forbidden(graph.block(), ALLOWED_OPS | _CALLS)
        if kind is None:
            inlined = _inlined(graph)  # held while its nodes are read: they die with the graph
            kind = _first_forbidden(inlined.block(), ALLOWED_OPS)
            if kind in _CALLS:
                return f"{kind} (a call the check cannot follow, in {where})"
        if kind in _WITH:
            return (f"{kind} (a with-block, in {where}; gencli already runs networks without gradients, "
                    "so a `with torch.no_grad()` can go)")
        if kind is not None:
            return f"{kind} (in {where})"
    return None


def _graphs(module: torch.jit.ScriptModule) -> Iterator[tuple[str, torch.Graph]]:
    for path, sub in reversed(list(module.named_modules())):
        owner = f"submodule {path!r}" if path else "the network"
        c = getattr(sub, "_c", None)
        if c is None:  # a loaded TorchScript module holds nothing but script modules
            raise TypeError(f"{type(sub).__name__} is not a TorchScript module")
        for name in c._method_names():
            yield f"{name} of {owner}", c._get_method(name).graph
        for hooks in (c._get_forward_pre_hooks(), c._get_forward_hooks()):
            for hook in hooks:
                yield f"hook {hook.name} of {owner}", hook.graph


def _inlined(graph: torch.Graph) -> torch.Graph:
    copy = graph.copy()
    torch._C._jit_pass_inline(copy)
    return copy


def _first_forbidden(block, allowed: frozenset[str]) -> str | None:
    for node in block.nodes():
        kind = node.kind()
        if kind not in allowed:
            return kind
        for inner in node.blocks():  # the branches of prim::If, the body of prim::Loop
            found = _first_forbidden(inner, allowed)
            if found is not None:
                return found
    return None


# ------------------------------------------------------------------ what runs while the file loads

_SETSTATE = re.compile(rb"\b__setstate__\b")
_CUSTOM_CLASS = re.compile(rb"\btorch\s*\.\s*classes\b")


def load_time_code(name: str, data: bytes) -> str | None:
    """Say what in an archive member would run while torch.jit.load builds the module, or None.

    ``name`` is the member's path in the archive; source members (``*.py``) are the compiled code.
    """
    if not name.endswith(".py"):
        return None
    if _SETSTATE.search(data):
        return "a __setstate__ method, which torch runs while loading the file"
    if _CUSTOM_CLASS.search(data):
        return "torch.classes (a C++ custom class, whose loading code cannot be checked)"
    return None
