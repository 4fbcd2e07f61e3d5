%% @doc Validation of Pharos records against docs/wire.md, version 1.
-module(pharos_brain_wire).
-export([decode/1, validate/1, validate/2, seq/1, source/1, atoms/0]).

%% @doc Every atom of docs/wire.md, version 1 (binary_to_term(_, [safe]) needs them to exist).
atoms() -> [metric, alert, counter, gauge, histogram, info, warning, critical, none, some, nil,
            pharos_batch, pharos_ack].

%% @doc A payload (term_to_binary of a record) decoded with [safe] and validated.
decode(Bin) ->
    try binary_to_term(Bin, [safe]) of
        Rec -> case validate(Rec) of ok -> {ok, Rec}; {error, _} = E -> E end
    catch error:badarg -> {error, bad_etf}
    end.

%% @doc ok, or {error, Reason} naming the first rule the record breaks, checked in this order:
%% name, kind | severity, value | message, tags, timestamp_ms, source.
%%
%% This runs once per record of every delivery mode, so it builds nothing: each field is tested in
%% turn and the first failure returned. A tag list that is not a proper list of {Text, Text} pairs
%% with distinct keys is {bad, tags}.
validate({metric, Name, Kind, Value, Tags, Ts, Source}) ->
    case is_name(Name) of
        false -> {error, {bad, name}};
        true when Kind =/= counter, Kind =/= gauge, Kind =/= histogram -> {error, {bad, kind}};
        true when not is_float(Value) -> {error, {bad, value}};
        true -> validate_tail(Tags, Ts, Source)
    end;
validate({alert, Name, Severity, Message, Tags, Ts, Source}) ->
    case is_name(Name) of
        false -> {error, {bad, name}};
        true when Severity =/= info, Severity =/= warning, Severity =/= critical -> {error, {bad, severity}};
        true ->
            case is_text(Message) of
                true -> validate_tail(Tags, Ts, Source);
                false -> {error, {bad, message}}
            end
    end;
validate(_) -> {error, not_a_record}.

%% @doc validate/1 for a record that follows Prev in a stream, where Prev is a record validate/1
%% accepted (or none): the answer is validate(Rec)'s, but a text equal to the one in the same place
%% of Prev is not checked again. In a stream of records the name, the source, the tag keys and
%% most tag values repeat, and checking UTF-8 was the largest share of the Brain's own code per
%% record of an acked batch (perf: is_utf8/1 at 9-13% of the Brain node's CPU). Anything else
%% than the same name, source and tag keys, in the same order, takes validate/1.
validate(Rec, Prev) ->
    case valid_like(Rec, Prev) of
        true -> ok;
        false -> validate(Rec)
    end.

%% true: Rec is valid, given that Prev is. The repeated variables match Prev's fields exactly.
valid_like({metric, Name, Kind, Value, Tags, Ts, Source}, {metric, Name, _, _, PTags, _, Source})
  when (Kind =:= counter orelse Kind =:= gauge orelse Kind =:= histogram), is_float(Value),
       is_integer(Ts) ->
    tags_like(Tags, PTags);
valid_like({alert, Name, Severity, Message, Tags, Ts, Source}, {alert, Name, _, PMessage, PTags, _, Source})
  when (Severity =:= info orelse Severity =:= warning orelse Severity =:= critical), is_integer(Ts) ->
    (Message =:= PMessage orelse is_text(Message)) andalso tags_like(Tags, PTags);
valid_like(_, _) -> false.

%% Prev's (distinct, valid) keys in the same order, each value Prev's or valid text.
tags_like([{K, V} | Rest], [{K, PV} | PRest]) -> (V =:= PV orelse is_text(V)) andalso tags_like(Rest, PRest);
tags_like([], []) -> true;
tags_like(_, _) -> false.

%% The fields metrics and alerts share: tags, timestamp_ms, source.
validate_tail(Tags, Ts, Source) ->
    case valid_tags(Tags) of
        false -> {error, {bad, tags}};
        true when not is_integer(Ts) -> {error, {bad, timestamp_ms}};
        true ->
            case is_text(Source) of
                true -> ok;
                false -> {error, {bad, source}}
            end
    end.

is_name(<<>>) -> false;
is_name(Name) -> is_text(Name).

%% Valid UTF-8, as unicode:characters_to_binary(B) =:= B decides (no surrogates, nothing above
%% 16#10FFFF, no overlong forms: the /utf8 segment refuses them), in one pass and without
%% building a binary: this is most of the cost of validating a record. ASCII, the common case,
%% goes 4 bytes at a time (measured faster than 2, 7 or 8 on OTP 25 to 29).
is_text(B) when is_binary(B) -> is_utf8(B);
is_text(_) -> false.

is_utf8(<<W:32, R/binary>>) when W band 16#80808080 =:= 0 -> is_utf8(R);
is_utf8(<<C, R/binary>>) when C < 128 -> is_utf8(R);
is_utf8(<<_/utf8, R/binary>>) -> is_utf8(R);
is_utf8(<<>>) -> true;
is_utf8(_) -> false.

%% A proper list of {Text, Text} pairs whose keys are distinct (as lists:usort/1 decides). The
%% 0 to 3 tags of a typical record are compared directly; longer lists are sorted.
valid_tags([]) -> true;
valid_tags([{K1, V1}]) -> is_text(K1) andalso is_text(V1);
valid_tags([{K1, V1}, {K2, V2}]) ->
    is_text(K1) andalso is_text(V1) andalso is_text(K2) andalso is_text(V2) andalso K1 =/= K2;
valid_tags([{K1, V1}, {K2, V2}, {K3, V3}]) ->
    is_text(K1) andalso is_text(V1) andalso is_text(K2) andalso is_text(V2)
        andalso is_text(K3) andalso is_text(V3)
        andalso K1 =/= K2 andalso K1 =/= K3 andalso K2 =/= K3;
valid_tags(Tags) -> text_pairs(Tags, [], 0).

text_pairs([{K, V} | Rest], Keys, N) ->
    is_text(K) andalso is_text(V) andalso text_pairs(Rest, [K | Keys], N + 1);
text_pairs([], Keys, N) -> length(lists:usort(Keys)) =:= N;
text_pairs(_, _, _) -> false.

%% @doc The record's `seq` tag as an integer, or none.
seq({_, _, _, _, Tags, _, _}) ->
    case lists:keyfind(<<"seq">>, 1, Tags) of
        {_, S} -> try binary_to_integer(S) catch error:badarg -> none end;
        false -> none
    end.

source({_, _, _, _, _, _, Source}) -> Source.
