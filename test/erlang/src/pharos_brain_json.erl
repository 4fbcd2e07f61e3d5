%% @doc A minimal JSON encoder for the control port (OTP 25 has no json module): maps with atom,
%% binary or integer keys; integers, floats, atoms, binaries and lists as values.
-module(pharos_brain_json).
-export([encode/1]).

encode(M) when is_map(M) ->
    Pairs = [[key(K), $:, encode(V)] || {K, V} <- lists:sort(maps:to_list(M))],
    [${, lists:join($,, Pairs), $}];
encode(L) when is_list(L) -> [$[, lists:join($,, [encode(E) || E <- L]), $]];
encode(true) -> "true";
encode(false) -> "false";
encode(null) -> "null";
encode(A) when is_atom(A) -> string(atom_to_binary(A));
encode(B) when is_binary(B) -> string(B);
encode(I) when is_integer(I) -> integer_to_list(I);
encode(F) when is_float(F) -> float_to_list(F, [short]).

key(K) when is_atom(K) -> string(atom_to_binary(K));
key(K) when is_binary(K) -> string(K);
key(K) when is_integer(K) -> string(integer_to_binary(K)).

string(B) -> [$", [esc(C) || <<C>> <= B], $"].

esc($") -> "\\\"";
esc($\\) -> "\\\\";
esc(C) when C < 32 -> io_lib:format("\\u~4.16.0b", [C]);
esc(C) -> C.
