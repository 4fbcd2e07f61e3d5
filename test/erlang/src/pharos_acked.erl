%% @doc The receiving side of Pharos' acknowledged mode (WIRE.md, "Acknowledged mode"), as a
%% library a Brain calls from its own process: no process, no registered name, no atoms created.
%%
%% Drop it into an existing Brain by adding one clause to its handle_info/2:
%%
%%   handle_info({pharos_batch, _, _, _, _} = Batch, #{acked := Acked} = State) ->
%%       case pharos_acked:handle_batch(Batch, Acked, fun my_brain:handle_payload/1) of
%%           {ok, Acked1, {ReplyTo, Ack}} -> ReplyTo ! Ack, {noreply, State#{acked := Acked1}};
%%           {error, _Reason} -> {noreply, State}
%%       end;
%%
%% State maps each SourceId to the NextSeq acknowledged so far. Keep it across restarts (a file, DETS,
%% a database) and save it before sending the ack, or a restarted Brain will process a resend twice.
-module(pharos_acked).
-export([new/0, handle_batch/3, next_seq/2]).
-export_type([state/0]).

-type state() :: #{binary() => non_neg_integer()}.

-spec new() -> state().
new() -> #{}.

%% @doc The NextSeq acknowledged for SourceId (0 when unknown).
-spec next_seq(binary(), state()) -> non_neg_integer().
next_seq(SourceId, State) -> maps:get(SourceId, State, 0).

%% @doc Process one batch: Fun is called, in order, with each payload binary whose sequence number
%% is at or above the NextSeq already acknowledged for the batch's SourceId; lower ones are
%% duplicates of a resend and are dropped. A batch that starts beyond NextSeq (records missing in
%% between) is not processed: the reply acknowledges the old NextSeq so the sender resends from
%% there. Returns the new state and the ack to send to ReplyTo.
-spec handle_batch(tuple(), state(), fun((binary()) -> term())) ->
          {ok, state(), {pid(), {pharos_ack, binary(), non_neg_integer()}}} | {error, term()}.
handle_batch({pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}, State, Fun)
  when is_pid(ReplyTo), is_binary(SourceId), is_integer(FirstSeq), FirstSeq >= 0, is_list(Payloads) ->
    Next = next_seq(SourceId, State),
    Next1 = if FirstSeq > Next -> Next;
               true -> process(Payloads, FirstSeq, Next, Fun)
            end,
    {ok, State#{SourceId => Next1}, {ReplyTo, {pharos_ack, SourceId, Next1}}};
handle_batch(_, _, _) -> {error, bad_batch}.

process([], _Seq, Next, _Fun) -> Next;
process([P | Rest], Seq, Next, Fun) when Seq < Next -> _ = P, process(Rest, Seq + 1, Next, Fun);
process([P | Rest], Seq, _Next, Fun) -> Fun(P), process(Rest, Seq + 1, Seq + 1, Fun).
