%% @doc Validation of Pharos records against WIRE.md, version 1.
-module(pharos_brain_wire).
-export([decode/1, validate/1, seq/1, source/1, atoms/0]).

%% @doc Every atom of WIRE.md, version 1 (binary_to_term(_, [safe]) needs them to exist).
atoms() -> [metric, alert, counter, gauge, histogram, info, warning, critical, none, some, nil,
            pharos_batch, pharos_ack].

%% @doc A payload (term_to_binary of a record) decoded with [safe] and validated.
decode(Bin) ->
    try binary_to_term(Bin, [safe]) of
        Rec -> case validate(Rec) of ok -> {ok, Rec}; {error, _} = E -> E end
    catch error:badarg -> {error, bad_etf}
    end.

%% @doc ok, or {error, Reason} naming the first rule the record breaks.
validate({metric, Name, Kind, Value, Tags, Ts, Source}) ->
    check([{name, is_text(Name) andalso Name =/= <<>>},
           {kind, lists:member(Kind, [counter, gauge, histogram])},
           {value, is_float(Value)},
           {tags, valid_tags(Tags)},
           {timestamp_ms, is_integer(Ts)},
           {source, is_text(Source)}]);
validate({alert, Name, Severity, Message, Tags, Ts, Source}) ->
    check([{name, is_text(Name) andalso Name =/= <<>>},
           {severity, lists:member(Severity, [info, warning, critical])},
           {message, is_text(Message)},
           {tags, valid_tags(Tags)},
           {timestamp_ms, is_integer(Ts)},
           {source, is_text(Source)}]);
validate(_) -> {error, not_a_record}.

check([]) -> ok;
check([{_, true} | Rest]) -> check(Rest);
check([{Field, false} | _]) -> {error, {bad, Field}}.

%% Valid UTF-8, as unicode:characters_to_binary(B) =:= B decides (no surrogates, nothing above
%% 16#10FFFF, no overlong forms: the /utf8 segment refuses them), in one pass and without
%% building a binary: this is most of the cost of validating a record.
is_text(B) when is_binary(B) -> is_utf8(B);
is_text(_) -> false.

is_utf8(<<C, R/binary>>) when C < 128 -> is_utf8(R);
is_utf8(<<_/utf8, R/binary>>) -> is_utf8(R);
is_utf8(<<>>) -> true;
is_utf8(_) -> false.

valid_tags(Tags) when is_list(Tags) ->
    lists:all(fun({K, V}) -> is_text(K) andalso is_text(V); (_) -> false end, Tags)
        andalso length(lists:usort([K || {K, _} <- Tags])) =:= length(Tags);
valid_tags(_) -> false.

%% @doc The record's `seq` tag as an integer, or none.
seq({_, _, _, _, Tags, _, _}) ->
    case lists:keyfind(<<"seq">>, 1, Tags) of
        {_, S} -> try binary_to_integer(S) catch error:badarg -> none end;
        false -> none
    end.

source({_, _, _, _, _, _, Source}) -> Source.
