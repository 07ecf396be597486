// Controller of the pipelined weight-stationary array: which fold loads and which fold streams
// in each cycle (accelsim.sim.engines.systolic, module docstring, "pipelined" ws/is).
//
// The GEMM O[T, Sc] = X[T, Sr] @ S[Sr, Sc] is cut into folds of ROWS x COLS stationary values,
// column folds outer and row folds inner (SCALE-Sim's order); fold n uses weight bank n mod 2.
// A fold's load shifts in only the LEN rows that hold data: ROWS, or Sr - r0 in the last row
// fold of a reduction that ROWS does not divide (the rows below meet zero activations, so their
// stale weights do not matter). The two start rules are those of _ws_pipelined in
// accelsim/sim/reference/pe.py, in its order within a cycle:
//
//   stream n starts in cycle c when its load (started before c) is done, c >= L[n] + LEN[n],
//            and the previous stream has ended, c >= S[n-1] + T.
//   load n   starts in cycle c when fold n-1 starts streaming in c (fold 0: in cycle 0): bank
//            n mod 2 is then idle, since fold n-2's last vector entered the array before c and
//            the bank latches LEN shifts later, after that vector has passed the LEN rows. The
//            chain is free by then too: stream n-1 waited for load n-1.
//
// L, LEN and S are kept per bank (fold n's are the latest of bank n mod 2 whenever a rule reads
// them) and compared with the cycle counter cyc, which is 0 in the first cycle after start. Both
// tokens are issued in the cycle their rule fires (Mealy outputs): the load token for column 0
// and the stream token for row 0; the top level skews them across columns and rows.
module ws_ctrl #(
    parameter ROWS  = 4,
    parameter COLS  = 4,
    parameter IDX_W = 16,
    parameter CYC_W = 32
) (
    input  wire             clk,
    input  wire             rst,
    // T, Sr, Sc of the GEMM (at least 1 each), held while running
    input  wire [IDX_W-1:0] t_len,
    input  wire [IDX_W-1:0] sr_len,
    input  wire [IDX_W-1:0] sc_len,
    input  wire             start,
    input  wire             finish,     // the last result has been written back
    output reg              running,
    output reg  [CYC_W-1:0] cyc,
    // load token of column 0: S[ld_k, ld_c0 + j] enters column j's chain; on the load's last
    // shift (ld_latch) rows 0..ld_len-1 latch their chain stage
    output wire             ld_valid,
    output wire             ld_bank,
    output wire             ld_latch,
    output wire [IDX_W-1:0] ld_k,
    output wire [IDX_W-1:0] ld_c0,
    output wire [IDX_W-1:0] ld_len,
    // stream token of row 0: vector st_tau of the fold at (st_r0, st_c0) enters the left edge
    output wire             st_valid,
    output wire             st_bank,
    output wire [IDX_W-1:0] st_tau,
    output wire [IDX_W-1:0] st_r0,
    output wire [IDX_W-1:0] st_c0,
    output wire             st_first,   // the fold's first row fold: results overwrite
    output wire             st_last     // the GEMM's last vector
);
    localparam [IDX_W-1:0] R_IDX = ROWS[IDX_W-1:0];
    localparam [IDX_W-1:0] C_IDX = COLS[IDX_W-1:0];
    wire [CYC_W-1:0] t_cyc = {{(CYC_W - IDX_W){1'b0}}, t_len};

    // ---- load side: fold next_load is the next to load, at (ldn_r0, ldn_c0)
    reg [CYC_W-1:0] next_load;
    reg [IDX_W-1:0] ldn_r0, ldn_c0;
    reg             ld_all;                 // every fold has started its load
    reg             ld_busy;                // a load started before this cycle is still shifting
    reg [IDX_W-1:0] ld_step, ldc_r0, ldc_c0, ldc_len;
    reg             ldc_bank;
    reg [CYC_W-1:0] l_time [0:1];           // L of the latest load of each bank
    reg [CYC_W-1:0] l_len  [0:1];           // and its LEN

    // ---- stream side: fold next_stream is the next to stream, at (stn_r0, stn_c0)
    reg [CYC_W-1:0] next_stream;
    reg [IDX_W-1:0] stn_r0, stn_c0;
    reg             st_all;
    reg             st_busy;                // a stream started before this cycle goes on
    reg [IDX_W-1:0] st_tau_r, stc_r0, stc_c0;
    reg             stc_bank, stc_lastfold;
    reg [CYC_W-1:0] s_time [0:1];           // S of the latest stream of each bank

    wire             ldn_lastrow = ldn_r0 + R_IDX >= sr_len;
    wire             ldn_last    = ldn_lastrow && (ldn_c0 + C_IDX >= sc_len);
    wire [IDX_W-1:0] ldn_len     = ldn_lastrow ? sr_len - ldn_r0 : R_IDX;
    wire             stn_lastrow = stn_r0 + R_IDX >= sr_len;
    wire             stn_last    = stn_lastrow && (stn_c0 + C_IDX >= sc_len);

    // ---- the start rules (pe.py _ws_pipelined, "controller")
    wire ns_bank    = next_stream[0];
    wire load_done  = cyc >= l_time[ns_bank] + l_len[ns_bank];
    wire prev_ended = (next_stream == 0) || (cyc >= s_time[~ns_bank] + t_cyc);
    wire stream_go  = running && !st_all && (next_stream < next_load) && load_done && prev_ended;

    wire nl_bank    = next_load[0];
    wire load_go    = running && !ld_all && ((next_load == 0) || (stream_go && next_stream + 1 == next_load));

    // ---- tokens issued in this cycle
    wire [IDX_W-1:0] ld_step_now = ld_busy ? ld_step : {IDX_W{1'b0}};
    wire [IDX_W-1:0] ld_r0_now   = ld_busy ? ldc_r0 : ldn_r0;
    assign ld_valid = ld_busy || load_go;
    assign ld_bank  = ld_busy ? ldc_bank : nl_bank;
    assign ld_c0    = ld_busy ? ldc_c0 : ldn_c0;
    assign ld_len   = ld_busy ? ldc_len : ldn_len;
    assign ld_latch = ld_step_now == ld_len - 1;
    assign ld_k     = ld_r0_now + (ld_len - 1 - ld_step_now);   // deepest row first

    assign st_valid = st_busy || stream_go;
    assign st_bank  = st_busy ? stc_bank : ns_bank;
    assign st_tau   = st_busy ? st_tau_r : {IDX_W{1'b0}};
    assign st_r0    = st_busy ? stc_r0 : stn_r0;
    assign st_c0    = st_busy ? stc_c0 : stn_c0;
    assign st_first = st_r0 == 0;
    assign st_last  = (st_busy ? stc_lastfold : stn_last) && (st_tau == t_len - 1);

    always @(posedge clk) begin
        if (rst) begin
            running <= 1'b0;
            ld_busy <= 1'b0;
            st_busy <= 1'b0;
        end else if (start) begin
            running <= 1'b1;
            cyc <= {CYC_W{1'b0}};
            next_load <= {CYC_W{1'b0}};
            ldn_r0 <= {IDX_W{1'b0}};
            ldn_c0 <= {IDX_W{1'b0}};
            ld_all <= 1'b0;
            ld_busy <= 1'b0;
            next_stream <= {CYC_W{1'b0}};
            stn_r0 <= {IDX_W{1'b0}};
            stn_c0 <= {IDX_W{1'b0}};
            st_all <= 1'b0;
            st_busy <= 1'b0;
        end else if (running) begin
            running <= !finish;
            cyc <= cyc + 1;

            if (load_go) begin
                l_time[nl_bank] <= cyc;
                l_len[nl_bank] <= {{(CYC_W - IDX_W){1'b0}}, ldn_len};
                next_load <= next_load + 1;
                ldn_r0 <= ldn_lastrow ? {IDX_W{1'b0}} : ldn_r0 + R_IDX;
                ldn_c0 <= ldn_lastrow ? ldn_c0 + C_IDX : ldn_c0;
                ld_all <= ldn_last;
                ld_busy <= ldn_len > 1;
                ld_step <= 1;
                ldc_bank <= nl_bank;
                ldc_r0 <= ldn_r0;
                ldc_c0 <= ldn_c0;
                ldc_len <= ldn_len;
            end else if (ld_busy) begin
                ld_busy <= ld_step != ldc_len - 1;
                ld_step <= ld_step + 1;
            end

            if (stream_go) begin
                s_time[ns_bank] <= cyc;
                next_stream <= next_stream + 1;
                stn_r0 <= stn_lastrow ? {IDX_W{1'b0}} : stn_r0 + R_IDX;
                stn_c0 <= stn_lastrow ? stn_c0 + C_IDX : stn_c0;
                st_all <= stn_last;
                st_busy <= t_len > 1;
                st_tau_r <= 1;
                stc_bank <= ns_bank;
                stc_r0 <= stn_r0;
                stc_c0 <= stn_c0;
                stc_lastfold <= stn_last;
            end else if (st_busy) begin
                st_busy <= st_tau_r != t_len - 1;
                st_tau_r <= st_tau_r + 1;
            end
        end
    end
endmodule
