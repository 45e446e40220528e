"""STL-style containers, iterators, algorithms, functors, adapters and an allocator (lesson 01).

Written in Python but faithful to the STL's contracts and complexities. Later lessons reuse
``PriorityQueue`` (deterministic topological order, lesson 06) and ``Map`` + ``PoolAllocator``
(memory planning, lesson 09).
"""
from course.containers.adapters import PriorityQueue, Queue, Stack
from course.containers.algorithms import (
    BackInserter, binary_search, copy, count_if, find, find_if, is_sorted, lower_bound, remove,
    remove_if, sort, stable_sort, upper_bound,
)
from course.containers.allocator import (
    AllocatorError, DoubleFreeError, ForeignBlockError, PoolAllocator, PoolExhaustedError,
)
from course.containers.avl import AVLTree, TreeNode
from course.containers.deque import Deque, DequeIterator
from course.containers.functional import EqualTo, Greater, KeyLess, Less, Not, equivalent
from course.containers.iterators import (
    BidirectionalIterator, BidirectionalIteratorTag, ForwardIteratorTag, IndexIterator,
    InputIteratorTag, Iterator, RandomAccessIteratorTag, advance, distance, is_random_access,
    iter_range, next_, prev_,
)
from course.containers.linked_list import List, ListIterator, link_writes
from course.containers.ordered import Map, MultiMap, Set, TreeIterator
from course.containers.vector import Vector, VectorIterator

__all__ = [
    "Vector", "VectorIterator", "Deque", "DequeIterator", "List", "ListIterator", "link_writes",
    "Map", "MultiMap", "Set", "TreeIterator", "AVLTree", "TreeNode",
    "Stack", "Queue", "PriorityQueue",
    "Less", "Greater", "EqualTo", "KeyLess", "Not", "equivalent",
    "Iterator", "BidirectionalIterator", "IndexIterator", "InputIteratorTag", "ForwardIteratorTag",
    "BidirectionalIteratorTag", "RandomAccessIteratorTag", "advance", "distance", "next_",
    "prev_", "iter_range", "is_random_access",
    "find", "find_if", "count_if", "copy", "BackInserter", "remove_if", "remove", "sort",
    "stable_sort", "is_sorted", "lower_bound", "upper_bound", "binary_search",
    "PoolAllocator", "AllocatorError", "PoolExhaustedError", "DoubleFreeError", "ForeignBlockError",
]
