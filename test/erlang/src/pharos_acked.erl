%% @doc The receiving side of Pharos' acknowledged mode (docs/wire.md, "Acknowledged mode"), as a
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
%%
%% Throughput (measured with the reference Brain, README "Throughput"): decoding a batch of 1,000
%% records makes about 400 KB of short-lived terms. Start the receiving process with a young heap of
%% that order, e.g. {spawn_opt, [{min_heap_size, 100000}]} (words), so it does not collect several
%% times per batch; stay below 128 Ki words, above which every collection moves to a dirty
%% scheduler (msacc showed it; a 1M-record send took 1.31 s against 0.97-0.99 s). Account for a
%% batch at once (fold_batch/4) rather than per record where you can.
-module(pharos_acked).
-export([new/0, handle_batch/3, fold_batch/4, next_seq/2]).
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
handle_batch(Batch, State, Fun) ->
    case fold_batch(Batch, State, fun(P, Acc) -> Fun(P), Acc end, nil) of
        {ok, State1, Ack, nil} -> {ok, State1, Ack};
        {error, _} = E -> E
    end.

%% @doc handle_batch/3 with an accumulator: Fun(Payload, Acc) -> Acc for each new payload, in
%% order, so a Brain can account for a whole batch at once.
-spec fold_batch(tuple(), state(), fun((binary(), A) -> A), A) ->
          {ok, state(), {pid(), {pharos_ack, binary(), non_neg_integer()}}, A} | {error, term()}.
fold_batch({pharos_batch, ReplyTo, SourceId, FirstSeq, Payloads}, State, Fun, Acc0)
  when is_pid(ReplyTo), is_binary(SourceId), is_integer(FirstSeq), FirstSeq >= 0, is_list(Payloads) ->
    Next = next_seq(SourceId, State),
    {Next1, Acc} = if FirstSeq > Next -> {Next, Acc0};
                      true -> process(Payloads, FirstSeq, Next, Fun, Acc0)
                   end,
    {ok, State#{SourceId => Next1}, {ReplyTo, {pharos_ack, SourceId, Next1}}, Acc};
fold_batch(_, _, _, _) -> {error, bad_batch}.

process([], _Seq, Next, _Fun, Acc) -> {Next, Acc};
process([_ | Rest], Seq, Next, Fun, Acc) when Seq < Next -> process(Rest, Seq + 1, Next, Fun, Acc);
process([P | Rest], Seq, _Next, Fun, Acc) -> process(Rest, Seq + 1, Seq + 1, Fun, Fun(P, Acc)).
