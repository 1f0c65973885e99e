from collections import namedtuple

import numpy as np
import pytest
from torch import nn

from archgraph import ArchGraph, ArchGraphError, ops
from archgraph.embody.darts import DARTS_V2, GENOTYPES, genotype_to_graphs, graphs_to_genotype
from archgraph.formats import (NB101_OPS, format_genotype, from_nb101, from_nb201_string, parse_genotype, to_nb101,
                               to_nb201_string)

# DARTS_V2 as the reference search code logs it (cnn/train_search.py: "genotype = %s", the concat
# lists as the range objects its Network.genotype() builds)
DARTS_LOG_LINE = (
    "06/24 11:55:42 PM genotype = Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1), ('sep_conv_3x3', 0), "
    "('sep_conv_3x3', 1), ('sep_conv_3x3', 1), ('skip_connect', 0), ('skip_connect', 0), ('dil_conv_3x3', 2)], "
    "normal_concat=range(2, 6), reduce=[('max_pool_3x3', 0), ('max_pool_3x3', 1), ('skip_connect', 2), "
    "('max_pool_3x3', 1), ('max_pool_3x3', 0), ('skip_connect', 2), ('skip_connect', 2), ('max_pool_3x3', 1)], "
    "reduce_concat=range(2, 6))"
)


# --- DARTS genotypes ------------------------------------------------------------------------

def test_a_darts_log_genotype_round_trips_through_the_parser_and_the_writer():
    genotype = parse_genotype(DARTS_LOG_LINE)
    assert genotype == DARTS_V2
    normal, reduce = genotype_to_graphs(genotype)
    written = format_genotype(graphs_to_genotype(normal, reduce))
    again = genotype_to_graphs(parse_genotype(written))
    assert again[0].is_identical(normal) and again[1].is_identical(reduce)
    assert format_genotype(graphs_to_genotype(*again)) == written  # a fixed point
    # the reference code reads the written string back as its own named tuple
    reference = namedtuple("Genotype", "normal normal_concat reduce reduce_concat")
    read = eval(written, {"__builtins__": {}, "Genotype": reference})  # our own output, checked as Python
    assert genotype_to_graphs(tuple(read))[0].is_identical(normal)
    assert read.normal_concat == [2, 3, 4, 5]


@pytest.mark.parametrize("name", list(GENOTYPES))
def test_published_genotypes_are_written_and_read_back_unchanged(name):
    genotype = GENOTYPES[name]
    written = format_genotype(genotype)
    assert parse_genotype(written) == genotype
    assert written == repr(genotype)
    normal, reduce = genotype_to_graphs(parse_genotype(format_genotype(graphs_to_genotype(*genotype_to_graphs(genotype)))))
    assert normal.is_identical(genotype_to_graphs(genotype)[0]) and reduce.is_identical(genotype_to_graphs(genotype)[1])


def test_fields_by_position_and_keyword_and_concat_as_range_or_list():
    by_keyword = ("Genotype(reduce_concat=[2], reduce=[('max_pool_3x3', 0), ('skip_connect', 1)], normal_concat=range(2, 3),"
                  " normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 0)])")
    by_position = ("Genotype([('sep_conv_3x3', 0), ('sep_conv_3x3', 0)], range(2, 3),\n"
                   "         [('max_pool_3x3', 0), ('skip_connect', 1)], [2])")
    assert parse_genotype(by_keyword) == parse_genotype(by_position)
    assert parse_genotype(by_keyword).normal_concat == [2]
    normal, _ = genotype_to_graphs(parse_genotype(by_position))
    assert normal.edge_op(0, 2) == "sep_conv_3x3 + sep_conv_3x3"


@pytest.mark.parametrize("text, match", [
    ("genotype: none found", r"expected a DARTS genotype, Genotype\(normal=\[\(op, input\)"),
    ("Genotype(normal=[('sep_conv_3x3', 0)", r"cannot read the genotype .Genotype\(normal=.*never closed"),
    ("Genotype(normal=[], normal_concat=[2])", "the genotype lacks reduce, reduce_concat; write Genotype"),
    ("Genotype([], [2], [], [2], normal=[])", "a repeated field 'normal'"),
    ("Genotype(normal=[], normal_concats=[2], reduce=[], reduce_concat=[2])", "an unknown field 'normal_concats'"),
    ("Genotype(normal=[('sep_conv_3x3',)], normal_concat=[2], reduce=[], reduce_concat=[2])",
     r"normal holds \('sep_conv_3x3',\); each entry is an \(op, input\) pair such as \('sep_conv_3x3', 0\)"),
    ("Genotype(normal=[('sep_conv_3x3', '0')], normal_concat=[2], reduce=[], reduce_concat=[2])", "normal holds"),
    ("Genotype(normal=[], normal_concat=nodes, reduce=[], reduce_concat=[2])",
     "normal_concat is nodes, which is not a literal"),
    ("Genotype(normal=[], normal_concat=range('2'), reduce=[], reduce_concat=[2])",
     r"normal_concat is range\('2'\); write range\(first, stop\)"),
    ("Genotype(normal=[], normal_concat=[2.0], reduce=[], reduce_concat=[2])", "list node ids"),
    ("Genotype(normal=7, normal_concat=[2], reduce=[], reduce_concat=[2])", "normal is 7, not a list"),
    # read, but not a pair of DARTS cells
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_9x9', 1)], normal_concat=[2], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", "unknown op 'sep_conv_9x9'; known ops: "),
    ("Genotype(normal=[('sep_conv_3x3', 0), ('sep_conv_3x3', 1)], normal_concat=[3], reduce=[('skip_connect', 0), "
     "('skip_connect', 1)], reduce_concat=[2])", r"normal_concat is \[3\]; list intermediate nodes of \[2\]"),
])
def test_bad_genotype_strings_give_one_clear_line(text, match):
    with pytest.raises(ArchGraphError, match=match) as e:
        genotype_to_graphs(parse_genotype(text))
    assert "\n" not in str(e.value)


def test_a_genotype_string_is_read_not_run(tmp_path):
    marker = tmp_path / "ran"
    with pytest.raises(ArchGraphError, match="not a literal"):
        parse_genotype(f"Genotype(normal=[open({str(marker)!r}, 'w')], normal_concat=[2], reduce=[], reduce_concat=[2])")
    assert not marker.exists()


# --- NAS-Bench-101 ----------------------------------------------------------------------------

# an Inception-like NAS-Bench-101 cell: four branches from the input, one of two convolutions
MATRIX = [[0, 1, 1, 1, 0, 1, 0],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 1, 0, 0],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 0]]
OPS = ["input", "conv1x1-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "conv3x3-bn-relu", "maxpool3x3", "output"]


def test_nb101_spec_round_trips():
    graph = from_nb101(np.array(MATRIX), OPS)
    assert graph.num_edges == 9 and graph.node_op(5) == "max_pool_3x3" and graph.node_op(0) is None
    assert to_nb101(graph) == (MATRIX, OPS)


def test_isomorphic_nb101_specs_give_equal_graphs():
    perm = [0, 5, 3, 4, 1, 2, 6]  # vertex i of the new spec is vertex perm[i] of the old, still topological
    matrix = [[MATRIX[perm[u]][perm[v]] for v in range(7)] for u in range(7)]
    ops = [OPS[perm[v]] for v in range(7)]
    assert all(matrix[u][v] == 0 for u in range(7) for v in range(u + 1))
    assert matrix != MATRIX
    a, b = from_nb101(MATRIX, OPS), from_nb101(matrix, ops)
    assert a == b and a.canonical_hash() == b.canonical_hash()
    assert not a.is_identical(b)


def test_to_nb101_puts_the_input_first_and_the_output_last_whatever_the_numbering():
    a = from_nb101(MATRIX, OPS)
    name = [6, 2, 0, 4, 1, 5, 3]  # vertex v of a becomes name[v]: the input 6, the output 3
    renamed = ArchGraph([(name[u], name[v]) for u, v in a.edges], num_nodes=7,
                        node_ops={name[v]: op for v, op in a.node_ops.items()})
    matrix, ops = to_nb101(renamed)
    assert ops[0] == "input" and ops[-1] == "output"
    assert from_nb101(matrix, ops) == a


@pytest.mark.parametrize("matrix, ops, match", [
    ([[0, 1], [0, 0], [0, 0]], ["input", "output"], "square with at least 2 rows"),
    ([[0, 1], [0, 0]], ["input", "conv3x3-bn-relu"], "'input' first and 'output' last"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "vertex 1 has op 'conv5x5'; the benchmark"),
    ([[0, 2], [0, 0]], ["input", "output"], r"entry \[0\]\[1\] is 2; entries are 0 or 1"),
    ([[0, 0], [1, 0]], ["input", "output"], r"entry \[1\]\[0\] is 1, but the matrix is upper-triangular"),
])
def test_bad_nb101_specs_give_one_clear_line(matrix, ops, match):
    with pytest.raises(ArchGraphError, match=match) as e:
        from_nb101(matrix, ops)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("graph, match", [
    (ArchGraph([(0, 1, "skip_connect")]), r"edge \(0, 1\) carries op 'skip_connect'"),
    (ArchGraph([(0, 1), (1, 2)], node_ops={1: "sep_conv_3x3"}), "vertex 1 carries op 'sep_conv_3x3'"),
    (ArchGraph([(0, 2), (1, 2)]), r"two vertices without an op.*; this graph has 3: \[0, 1, 2\]"),
])
def test_graphs_outside_nb101_are_refused(graph, match):
    with pytest.raises(ArchGraphError, match=match):
        to_nb101(graph)


@pytest.mark.parametrize("name, module, kernel", [("conv3x3-bn-relu", nn.Conv2d, (3, 3)),
                                                 ("conv1x1-bn-relu", nn.Conv2d, (1, 1)),
                                                 ("maxpool3x3", nn.MaxPool2d, 3)])
def test_each_nb101_op_stands_for_the_registered_op_of_its_kind(name, module, kernel):
    graph = from_nb101([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", name, "output"])
    built = ops.build(graph.node_op(1), ops.OpContext(4, 4))
    first = next(m for m in built.modules() if isinstance(m, module))
    assert first.kernel_size == kernel
    assert to_nb101(graph)[1] == ["input", name, "output"]
    assert set(NB101_OPS) == {"conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"}


# --- NAS-Bench-201 -----------------------------------------------------------------------------

def test_nb201_string_round_trips_and_bad_strings_give_one_line():
    text = "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_1x1~2|"
    assert to_nb201_string(from_nb201_string(text)) == text
    for bad, match in [("|nor_conv_3x3~0|", "3 '\\+'-separated groups"),
                       ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "carries 'conv', which is not a NAS-Bench-201 op")]:
        with pytest.raises(ArchGraphError, match=match) as e:
            from_nb201_string(bad)
        assert "\n" not in str(e.value)
