// ROWS x COLS grid of PEs: the pipelined weight-stationary array without its controller
// (accelsim.sim.engines.systolic, module docstring, "pipelined" timing, ws/is; register-level
// Python model: _ws_pipelined in accelsim/sim/reference/pe.py).
//
// Edges (flattened, lane i at [i*W +: W]):
//   left   x_edge*    row i's PS activations, already skewed: row i runs i cycles behind row 0
//   top    w_top      column j's next PC weights for its load chain, deepest row first
//          w_shift/w_latch/w_bank/w_len  column j's chain controls, column j j cycles behind
//                     column 0; on w_latch only the w_len rows that hold data latch
//   bottom psum_bottom column j's PC*PS finished dot products (the PE (ROWS-1, j) registers)
// Partial sums enter the top row as zero. mac_any: some PE does a MAC in this cycle.
//
// One PE holds two banks of stationary weights (ping-pong "shadow" registers): fold n multiplies
// by bank n mod 2 while fold n+1's weights shift down the column's load chain and latch into the
// other bank. Which bank a MAC uses is carried by the activation itself (its bank bit), so the
// switch from one fold to the next travels through the array with the data: no PE needs to know
// where the wavefront is. Per cycle the activation moves one PE right, the partial sum one PE
// down (both registered), the chain stage takes the stage above when the column shifts, and on
// the load's last shift the bank latches the value that is shifting in (the chain's next state),
// so the weights are usable from the next cycle on. A load shifts in only the rows that hold
// data; the rows below keep stale weights and meet zero activations.
//
// Packing (PC x PS products per cycle, at most two: one DSP48E2, packed_mul2): a PE holds PC
// columns of the stationary operand (lanes a) and takes PS consecutive vectors per cycle (lanes
// u), keeping PC*PS partial sums, lane a*PS + u. PC = 2 is ws with two weights per DSP (Packing
// n = 2); PS = 2 is is with two activations per DSP (the ws array run on the transposed problem).
// Packing needs DATA_W = 8 (WP486's layout).
//
// The PEs are written as one register array updated by a loop (next state in an always block,
// every register latched at the clock), not as ROWS*COLS module instances: Verilator then keeps
// one copy of a PE's code for the whole array, where instances would make it emit one per PE
// (tens of MB of C++ at 32x64). Register for register it is the same array.
module ws_array #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter IDX_W  = 16,
    parameter PC     = 1,   // packing: stationary columns per PE
    parameter PS     = 1    // packing: streamed vectors per PE
) (
    input  wire                         clk,
    input  wire                         rst,
    input  wire [ROWS*PS*DATA_W-1:0]    x_edge,
    input  wire [ROWS-1:0]              x_edge_valid,
    input  wire [ROWS-1:0]              x_edge_bank,
    input  wire [COLS*PC*DATA_W-1:0]    w_top,
    input  wire [COLS-1:0]              w_shift,
    input  wire [COLS-1:0]              w_latch,
    input  wire [COLS-1:0]              w_bank,
    input  wire [COLS*IDX_W-1:0]        w_len,
    output wire [COLS*PC*PS*ACC_W-1:0]  psum_bottom,
    output reg                          mac_any
);
    localparam XW = PS * DATA_W;    // a PE's activation register
    localparam WW = PC * DATA_W;    // a chain stage, a bank
    localparam NP = PC * PS;        // products per cycle
    localparam PW = NP * ACC_W;     // a PE's partial sums
    localparam NPE = ROWS * COLS;
    localparam PRW = NP * 2 * DATA_W;  // the products of a cycle
    // one PE's registers, PE (i, j) at entry i*COLS + j:
    //   {bank1, bank0, chain, psum, x bank, x valid, x}
    localparam X_O  = 0;
    localparam V_O  = XW;
    localparam B_O  = XW + 1;
    localparam P_O  = XW + 2;
    localparam C_O  = P_O + PW;
    localparam B0_O = C_O + WW;
    localparam B1_O = B0_O + WW;
    localparam ST_W = B1_O + WW;

    // The registers: PE k's are pe_s[ph*NPE + k]. The clock edge copies the next state into the
    // other half and flips ph, so a block that reads the registers at the same edge still sees
    // this cycle's half (the copy is a loop of blocking writes, which the simulator keeps rolled;
    // a whole-array non-blocking copy it expands into one statement per PE).
    reg [ST_W-1:0] pe_s [0:2*NPE-1];
    reg            ph = 1'b0;
    reg [ST_W-1:0] pe_n [0:NPE-1];   // their next state

    // ---- next state of every PE, from the registers of this cycle and the array's edges
    integer i, j, k, l;
    wire [31:0] cur = ph ? NPE : 0;   // this cycle's half
    reg [XW-1:0]          x_in;      // into PE (i, j) from the left neighbour or the row's edge
    reg                   v_in, b_in;
    reg [PW-1:0]          p_in;      // from the PE above (zero at the top row)
    reg [WW-1:0]          w_in;      // the chain stage above (or the column's top)
    reg [WW-1:0]          w_use;     // the bank this activation's fold multiplies by
    reg [PRW-1:0]         prods;     // the exact products, lane a*PS + u
    reg [2*DATA_W-1:0]    prod;
    reg [IDX_W-1:0]       row;
    reg                   any;
    always @(*) begin
        {x_in, v_in, b_in, p_in, w_in, w_use, prods, prod, row, any} = '0;
        // one loop over every PE (two nested loops of at most 64 the simulator would unroll)
        k = 0;
        while (k < NPE) begin
            i = k / COLS;
            j = k % COLS;
            row = i[IDX_W-1:0];
            if (j == 0) begin
                x_in = x_edge[i*XW +: XW];
                v_in = x_edge_valid[i];
                b_in = x_edge_bank[i];
            end else begin
                x_in = pe_s[cur + k-1][X_O +: XW];
                v_in = pe_s[cur + k-1][V_O];
                b_in = pe_s[cur + k-1][B_O];
            end
            p_in = (i == 0) ? {PW{1'b0}} : pe_s[cur + k-COLS][P_O +: PW];
            w_in = (i == 0) ? w_top[j*WW +: WW] : pe_s[cur + k-COLS][C_O +: WW];
            w_use = b_in ? pe_s[cur + k][B1_O +: WW] : pe_s[cur + k][B0_O +: WW];
            if (NP == 1)      prods = PRW'($signed(x_in) * $signed(w_use));
            else if (PC == 2) prods = PRW'(packed_mul2::mul(16'(w_use), 8'(x_in)));
            else              prods = PRW'(packed_mul2::mul(16'(x_in), 8'(w_use)));

            pe_n[k] = pe_s[cur + k];
            pe_n[k][X_O +: XW] = x_in;
            pe_n[k][V_O] = v_in && !rst;
            pe_n[k][B_O] = b_in;
            if (v_in)
                for (l = 0; l < NP; l = l + 1) begin
                    prod = prods[l*2*DATA_W +: 2*DATA_W];
                    pe_n[k][P_O + l*ACC_W +: ACC_W] = p_in[l*ACC_W +: ACC_W]
                        + {{(ACC_W - 2*DATA_W){prod[2*DATA_W-1]}}, prod};
                end
            if (w_shift[j]) pe_n[k][C_O +: WW] = w_in;
            if (w_latch[j] && row < w_len[j*IDX_W +: IDX_W]) begin
                if (w_bank[j]) pe_n[k][B1_O +: WW] = w_in;
                else           pe_n[k][B0_O +: WW] = w_in;
            end
            any = any || v_in;
            k = k + 1;
        end
        mac_any = any;
    end

    integer c;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        c = 0;
        while (c < NPE) begin
            pe_s[(ph ? 0 : NPE) + c] = pe_n[c];
            c = c + 1;
        end
        ph <= !ph;
    end
    /* verilator lint_on BLKSEQ */

    genvar g;
    generate
        if (NP > 2 || (NP == 2 && DATA_W != 8)) begin : g_bad_packing
            $error("ws_array: packing is two products of 8-bit operands per DSP at most (PC=%0d PS=%0d DATA_W=%0d)",
                   PC, PS, DATA_W);
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_bottom
            assign psum_bottom[g*PW +: PW] = pe_s[cur + (ROWS-1)*COLS + g][P_O +: PW];
        end
    endgenerate
endmodule
