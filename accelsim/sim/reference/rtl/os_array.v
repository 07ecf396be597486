// ROWS x COLS grid of PEs: the pipelined output-stationary array without its controller
// (accelsim.sim.engines.systolic, module docstring, "pipelined" timing, os; register-level Python
// model: _os_pipelined in accelsim/sim/reference/pe.py).
//
// Edges (flattened, lane i at [i*W +: W]):
//   left   a_edge*   row i's A element with valid / bank / first, row i i cycles behind row 0
//   top    b_edge    column j's PN B elements, column j j cycles behind column 0
//          dr_*      column j's drain step: valid, bank and step d (rows below d shift down);
//                    column j j cycles behind column 0
//   bottom acc_bottom column j's output port: PE (ROWS-1, j)'s bank dr_bank[j] (PN outputs)
// mac_any: some PE does a MAC in this cycle.
//
// A PE owns PN outputs of one row of the fold and holds two accumulator banks: fold n accumulates
// in bank n mod 2 while the other bank drains fold n-1's results down the column. A's element
// moves one PE right and B's one PE down per cycle; the bank, the "first term" flag and the valid
// bit travel with A, so the switch from one fold to the next moves through the array with the
// data. In a drain step d the column's bank dr_bank shifts down by one row for the rows below d;
// the bottom PE's bank leaves through the column's port. A row above d keeps its value, so the
// next fold of that bank can already accumulate there: the controller guarantees that a MAC and a
// drain shift never write the same register in the same cycle.
//
// Packing (PN = 2: two INT8 products per DSP48E2, WP486, packed_mul2): the PE owns C[m, n..n+1];
// B brings two elements down, A's one element is the shared operand, and each bank holds two
// accumulators (lane b at [b*ACC_W +: ACC_W]) that drain together. Packing needs DATA_W = 8.
//
// Written as one register array updated by a loop, as ws_array (which says why).
module os_array #(
    parameter ROWS   = 4,
    parameter COLS   = 4,
    parameter DATA_W = 8,
    parameter ACC_W  = 32,
    parameter IDX_W  = 16,
    parameter PN     = 1    // packing: outputs per PE along N
) (
    input  wire                      clk,
    input  wire                      rst,
    input  wire [ROWS*DATA_W-1:0]    a_edge,
    input  wire [ROWS-1:0]           a_edge_valid,
    input  wire [ROWS-1:0]           a_edge_bank,
    input  wire [ROWS-1:0]           a_edge_first,
    input  wire [COLS*PN*DATA_W-1:0] b_edge,
    input  wire [COLS-1:0]           dr_valid,
    input  wire [COLS-1:0]           dr_bank,
    input  wire [COLS*IDX_W-1:0]     dr_step,
    output wire [COLS*PN*ACC_W-1:0]  acc_bottom,
    output reg                       mac_any
);
    localparam BW  = PN * DATA_W;   // a PE's B register
    localparam AW  = PN * ACC_W;    // one accumulator bank
    localparam PRW = PN * 2 * DATA_W;
    localparam NPE = ROWS * COLS;

    // The registers, one array per register of a PE, double-buffered as in ws_array (which says
    // why): PE (i, j)'s are entry ph*NPE + i*COLS + j.
    reg [DATA_W-1:0] a_s  [0:2*NPE-1];   // A's element, passing right
    reg              v_s  [0:2*NPE-1];   // its valid bit
    reg              bk_s [0:2*NPE-1];   // its fold's bank
    reg              f_s  [0:2*NPE-1];   // its "first term" flag
    reg [BW-1:0]     b_s  [0:2*NPE-1];   // B's elements, passing down
    reg [AW-1:0]     a0_s [0:2*NPE-1];   // accumulator bank 0
    reg [AW-1:0]     a1_s [0:2*NPE-1];   // accumulator bank 1
    reg              ph = 1'b0;
    reg [DATA_W-1:0] a_n  [0:NPE-1];
    reg              v_n  [0:NPE-1];
    reg              bk_n [0:NPE-1];
    reg              f_n  [0:NPE-1];
    reg [BW-1:0]     b_n  [0:NPE-1];
    reg [AW-1:0]     a0_n [0:NPE-1];
    reg [AW-1:0]     a1_n [0:NPE-1];

    integer i, j, k, l;
    wire [31:0] cur = ph ? NPE : 0;   // this cycle's half
    reg [DATA_W-1:0] a_in;
    reg              v_in, bk_in, f_in;
    reg [BW-1:0]     b_in;
    reg [AW-1:0]     base, sum, acc_in;   // acc_in: the bank the PE above drains into this one
    reg [PRW-1:0]    prods;               // the exact products, lane b
    reg [2*DATA_W-1:0] prod;
    reg [IDX_W-1:0]  row;
    reg              shift, any;
    always @(*) begin
        {a_in, v_in, bk_in, f_in, b_in, base, sum, acc_in, prods, prod, row, shift, any} = '0;
        // one loop over every PE (two nested loops of at most 64 the simulator would unroll)
        k = 0;
        while (k < NPE) begin
            i = k / COLS;
            j = k % COLS;
            row = i[IDX_W-1:0];
            if (j == 0) begin
                a_in  = a_edge[i*DATA_W +: DATA_W];
                v_in  = a_edge_valid[i];
                bk_in = a_edge_bank[i];
                f_in  = a_edge_first[i];
            end else begin
                a_in  = a_s[cur + k-1];
                v_in  = v_s[cur + k-1];
                bk_in = bk_s[cur + k-1];
                f_in  = f_s[cur + k-1];
            end
            b_in = (i == 0) ? b_edge[j*BW +: BW] : b_s[cur + k-COLS];
            // step d moves every row below d down by one; the top row never receives
            shift = i > 0 && dr_valid[j] && dr_step[j*IDX_W +: IDX_W] < row;
            acc_in = (i == 0) ? {AW{1'b0}} : (dr_bank[j] ? a1_s[cur + k-COLS] : a0_s[cur + k-COLS]);
            if (PN == 1) prods = PRW'($signed(a_in) * $signed(b_in));
            else         prods = PRW'(packed_mul2::mul(16'(b_in), 8'(a_in)));
            base = f_in ? {AW{1'b0}} : (bk_in ? a1_s[cur + k] : a0_s[cur + k]);
            for (l = 0; l < PN; l = l + 1) begin
                prod = prods[l*2*DATA_W +: 2*DATA_W];
                sum[l*ACC_W +: ACC_W] = base[l*ACC_W +: ACC_W] + {{(ACC_W - 2*DATA_W){prod[2*DATA_W-1]}}, prod};
            end

            a_n[k]  = a_in;
            v_n[k]  = v_in && !rst;
            bk_n[k] = bk_in;
            f_n[k]  = f_in;
            b_n[k]  = b_in;
            a0_n[k] = (v_in && !bk_in) ? sum : (shift && !dr_bank[j]) ? acc_in : a0_s[cur + k];
            a1_n[k] = (v_in && bk_in) ? sum : (shift && dr_bank[j]) ? acc_in : a1_s[cur + k];
            any = any || v_in;
            k = k + 1;
        end
        mac_any = any;
    end

    integer c, nx;
    /* verilator lint_off BLKSEQ */
    always @(posedge clk) begin
        nx = ph ? 0 : NPE;
        c = 0;
        while (c < NPE) begin
            a_s[nx + c]  = a_n[c];
            v_s[nx + c]  = v_n[c];
            bk_s[nx + c] = bk_n[c];
            f_s[nx + c]  = f_n[c];
            b_s[nx + c]  = b_n[c];
            a0_s[nx + c] = a0_n[c];
            a1_s[nx + c] = a1_n[c];
            c = c + 1;
        end
        ph <= !ph;
    end
    /* verilator lint_on BLKSEQ */

    genvar g;
    generate
        if (PN > 2 || (PN == 2 && DATA_W != 8)) begin : g_bad_packing
            $error("os_array: packing is two products of 8-bit operands per DSP at most (PN=%0d DATA_W=%0d)",
                   PN, DATA_W);
        end
        for (g = 0; g < COLS; g = g + 1) begin : g_bottom
            localparam integer K = (ROWS - 1) * COLS + g;
            assign acc_bottom[g*AW +: AW] = dr_bank[g] ? a1_s[cur + K] : a0_s[cur + K];
        end
    endgenerate
endmodule
